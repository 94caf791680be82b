// Short-time Fourier transform and its inverse (librosa conventions:
// periodic Hann window, frames centred by n_fft/2 zeros of padding,
// inverse by windowed overlap-add normalised by the window's sum of squares).
// The FFT is an in-place iterative radix-2 Cooley-Tukey transform in
// workgroup memory, one workgroup per two frames.

const N_MAX: u32 = 2048u;
const WG: u32 = 256u;
// Smallest normal f32, librosa's `util.tiny` for float32.
const TINY: f32 = 1.1754944e-38;

struct StftParams {
    n_fft: u32,
    log2_n: u32,
    hop: u32,
    bins: u32,
    planes: u32,
    // Frames per plane in the spectrum / time-frame buffers.
    frames: u32,
    // Samples per plane in the input buffer (forward).
    samples_per_plane: u32,
    // Global index of buffer frame 0 (overlap-add).
    frame_base: u32,
    // Frames that exist in the whole signal: the overlap-add coverage.
    frames_total: u32,
    // Global index of output sample 0, unpadded coordinates (overlap-add).
    out_start: u32,
    // Output samples per plane (overlap-add).
    out_len: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: StftParams;
@group(0) @binding(1) var<storage, read> window: array<f32>;
// twiddle[k] = exp(-2 pi i k / n_fft), k < n_fft / 2.
@group(0) @binding(2) var<storage, read> twiddle: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> samples: array<f32>;
@group(0) @binding(4) var<storage, read_write> spectrum_out: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> spectrum_in: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> frames_out: array<f32>;
@group(0) @binding(7) var<storage, read> frames_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> signal_out: array<f32>;

var<workgroup> buf: array<vec2<f32>, N_MAX>;

fn bit_reverse(i: u32) -> u32 {
    return reverseBits(i) >> (32u - p.log2_n);
}

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Butterfly stages over `buf`, which holds the input in bit-reversed order.
// `sign` is 1 for the forward transform, -1 for the inverse (conjugate twiddles).
fn fft_in_workgroup(lid: u32, sign: f32) {
    let n = p.n_fft;
    // `half` is 2^stage, so divisions by it are shifts and masks: SIMD
    // backends (lavapipe) have no vector integer division and would run a
    // scalar divide per lane in this innermost loop.
    for (var stage = 0u; stage < p.log2_n; stage++) {
        workgroupBarrier();
        let half = 1u << stage;
        let stride_shift = p.log2_n - 1u - stage;
        for (var b = lid; b < n / 2u; b += WG) {
            let j = b & (half - 1u);
            let i0 = ((b >> stage) << (stage + 1u)) + j;
            let i1 = i0 + half;
            let t = twiddle[j << stride_shift];
            let w = vec2<f32>(t.x, sign * t.y);
            let odd = cmul(w, buf[i1]);
            let even = buf[i0];
            buf[i0] = even + odd;
            buf[i1] = even - odd;
        }
    }
    workgroupBarrier();
}

fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Two real frames share one complex FFT ("two for one"): frame a in the
// real part, frame b in the imaginary part, separated afterwards by
// Hermitian symmetry. Workgroup m handles frames 2m and 2m + 1 of the
// (plane, frame) sequence; an odd last frame pairs with zeros.

// One workgroup per pair of (plane, frame): windowed frames -> bins 0..=n/2.
@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let pair = workgroup_index(wid, nwg);
    let jobs = p.planes * p.frames;
    let job_a = 2u * pair;
    if (job_a >= jobs) {
        return;
    }
    let job_b = job_a + 1u;
    let has_b = job_b < jobs;
    let start_a = (job_a / p.frames) * p.samples_per_plane + (job_a % p.frames) * p.hop;
    let start_b = (job_b / p.frames) * p.samples_per_plane + (job_b % p.frames) * p.hop;
    for (var i = lid; i < p.n_fft; i += WG) {
        var b = 0.0;
        if (has_b) {
            b = samples[start_b + i];
        }
        buf[bit_reverse(i)] = vec2<f32>(samples[start_a + i], b) * window[i];
    }
    fft_in_workgroup(lid, 1.0);
    let mask = p.n_fft - 1u;
    for (var k = lid; k < p.bins; k += WG) {
        let z = buf[k];
        let m = buf[(p.n_fft - k) & mask];
        spectrum_out[job_a * p.bins + k] = 0.5 * vec2<f32>(z.x + m.x, z.y - m.y);
        if (has_b) {
            spectrum_out[job_b * p.bins + k] = 0.5 * vec2<f32>(z.y + m.y, m.x - z.x);
        }
    }
}

// A spectrum value of a real frame at bin k of 0..n, from bins 0..=n/2
// (Hermitian extension; DC and Nyquist imaginary parts dropped, as a real
// inverse FFT does).
fn hermitian(base: u32, k: u32) -> vec2<f32> {
    let n = p.n_fft;
    var v: vec2<f32>;
    if (k < p.bins) {
        v = spectrum_in[base + k];
    } else {
        let mirror = spectrum_in[base + n - k];
        v = vec2<f32>(mirror.x, -mirror.y);
    }
    if (k == 0u || k == n / 2u) {
        v.y = 0.0;
    }
    return v;
}

// One workgroup per pair of (plane, frame): bins 0..=n/2 -> windowed time
// frames, as ifft(A + iB) = a + ib for real a, b.
@compute @workgroup_size(256)
fn inverse(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let pair = workgroup_index(wid, nwg);
    let jobs = p.planes * p.frames;
    let job_a = 2u * pair;
    if (job_a >= jobs) {
        return;
    }
    let job_b = job_a + 1u;
    let has_b = job_b < jobs;
    let n = p.n_fft;
    for (var k = lid; k < n; k += WG) {
        let a = hermitian(job_a * p.bins, k);
        var b = vec2<f32>(0.0, 0.0);
        if (has_b) {
            b = hermitian(job_b * p.bins, k);
        }
        buf[bit_reverse(k)] = vec2<f32>(a.x - b.y, a.y + b.x);
    }
    fft_in_workgroup(lid, -1.0);
    let scale = 1.0 / f32(n);
    for (var i = lid; i < n; i += WG) {
        let w = buf[i] * (scale * window[i]);
        frames_out[job_a * n + i] = w.x;
        if (has_b) {
            frames_out[job_b * n + i] = w.y;
        }
    }
}

// One thread per (plane, output sample): gathers the windowed frames that
// cover the sample and divides by the window's sum of squares there.
@compute @workgroup_size(256)
fn overlap_add(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg) * WG + lid;
    if (index >= p.planes * p.out_len) {
        return;
    }
    let plane = index / p.out_len;
    let padded = i32(p.out_start + index % p.out_len + p.pad);
    let hop = i32(p.hop);
    let n = i32(p.n_fft);
    // Frames f with f*hop <= padded < f*hop + n.
    let first = max(0, (padded - n + hop) / hop);
    let last = min(i32(p.frames_total) - 1, padded / hop);
    var sum = 0.0;
    var weight = 0.0;
    for (var f = first; f <= last; f++) {
        let local = f - i32(p.frame_base);
        if (local < 0 || local >= i32(p.frames)) {
            continue;
        }
        let offset = u32(padded - f * hop);
        let w = window[offset];
        sum += frames_in[(plane * p.frames + u32(local)) * p.n_fft + offset];
        weight += w * w;
    }
    if (weight > TINY) {
        sum = sum / weight;
    }
    signal_out[index] = sum;
}
