// A spectrogram of audio decoded by the browser (WebAudio), drawn on a
// canvas the way `ledgerline audio spectrogram` draws its PNGs: time in
// seconds across, frequency on a log scale from 20 Hz up, a title, and a
// dB colour scale.

const FFT_SIZE = 2048;
const FLOOR_DB = -90;
const LOW_HZ = 20;

/** In-place radix-2 FFT of `re`/`im` (length a power of two). */
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(angle * k);
        const wi = Math.sin(angle * k);
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/** A perceptually ordered dark-to-bright colour for `t` in 0..1. */
function colour(t) {
  const stops = [
    [0, 0, 4], [60, 15, 110], [150, 40, 120], [230, 90, 70], [252, 200, 60], [252, 255, 164],
  ];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

/** Mono samples (channels averaged) of an AudioBuffer. */
function mono(buffer) {
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < out.length; i++) out[i] += data[i] / buffer.numberOfChannels;
  }
  return out;
}

/** Decodes `bytes` (any format the browser reads) and draws it on `canvas`. */
export async function drawSpectrogram(canvas, bytes, title) {
  const context = new OfflineAudioContext(1, 1, 44100);
  const buffer = await context.decodeAudioData(bytes.slice(0));
  const samples = mono(buffer);
  const rate = buffer.sampleRate;
  const g = canvas.getContext("2d");
  const [left, right, top, bottom] = [56, 90, 28, 40];
  const width = canvas.width - left - right;
  const height = canvas.height - top - bottom;
  const high = rate / 2;
  const logLow = Math.log(LOW_HZ);
  const logSpan = Math.log(high) - logLow;

  // One FFT column per pixel, Hann-windowed.
  const hop = Math.max(1, Math.floor((samples.length - FFT_SIZE) / width));
  const window = Float32Array.from({ length: FFT_SIZE }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / FFT_SIZE));
  const image = g.createImageData(width, height);
  const re = new Float32Array(FFT_SIZE);
  const im = new Float32Array(FFT_SIZE);
  const rowBin = Array.from({ length: height }, (_, y) => {
    const hz = Math.exp(logLow + (logSpan * (height - 1 - y)) / (height - 1));
    return Math.min(FFT_SIZE / 2 - 1, Math.round((hz / rate) * FFT_SIZE));
  });
  for (let x = 0; x < width; x++) {
    const start = x * hop;
    for (let i = 0; i < FFT_SIZE; i++) {
      re[i] = (samples[start + i] ?? 0) * window[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let y = 0; y < height; y++) {
      const bin = rowBin[y];
      const magnitude = Math.hypot(re[bin], im[bin]) / (FFT_SIZE / 4);
      const db = 20 * Math.log10(magnitude + 1e-12);
      const [r, gg, b] = colour((db - FLOOR_DB) / -FLOOR_DB);
      const at = 4 * (y * width + x);
      image.data.set([r, gg, b, 255], at);
    }
  }
  g.fillStyle = "#ffffff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.putImageData(image, left, top);

  g.fillStyle = "#1b1f24";
  g.font = "13px system-ui, sans-serif";
  g.fillText(title, left, 18);
  g.font = "11px system-ui, sans-serif";
  // Time axis.
  const seconds = samples.length / rate;
  const step = [1, 2, 5, 10, 15, 30, 60].find((s) => seconds / s <= 10) ?? 120;
  g.textAlign = "center";
  for (let s = 0; s <= seconds; s += step) {
    const x = left + (s / seconds) * width;
    g.fillRect(x, top + height, 1, 4);
    g.fillText(`${s}`, x, top + height + 16);
  }
  g.fillText("time (s)", left + width / 2, top + height + 32);
  // Frequency axis, log scale.
  g.textAlign = "right";
  for (const hz of [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]) {
    if (hz > high) break;
    const y = top + (height - 1) * (1 - (Math.log(hz) - logLow) / logSpan);
    g.fillRect(left - 4, y, 4, 1);
    g.fillText(hz >= 1000 ? `${hz / 1000}k` : `${hz}`, left - 6, y + 4);
  }
  g.save();
  g.translate(14, top + height / 2);
  g.rotate(-Math.PI / 2);
  g.textAlign = "center";
  g.fillText("frequency (Hz)", 0, 0);
  g.restore();
  // Colour scale in dB.
  const barX = left + width + 16;
  for (let y = 0; y < height; y++) {
    const [r, gg, b] = colour(1 - y / (height - 1));
    g.fillStyle = `rgb(${r},${gg},${b})`;
    g.fillRect(barX, top + y, 14, 1);
  }
  g.fillStyle = "#1b1f24";
  g.textAlign = "left";
  for (let db = 0; db >= FLOOR_DB; db -= 30) {
    g.fillText(`${db} dB`, barX + 18, top + (height - 1) * (db / FLOOR_DB) + 4);
  }
  return { seconds, sampleRate: rate };
}
