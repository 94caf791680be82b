// YIN fundamental-frequency estimation (de Cheveigne & Kawahara 2002, as
// librosa.yin frames it) and per-frame loudness. `difference` computes
// d(tau) = sum_{j<W} (x[j] - x[j + tau])^2 for every (frame, tau);
// `pick` turns each frame's row into the cumulative-mean-normalised
// difference, takes the first trough below the threshold (else the global
// minimum), refines it by parabolic interpolation, and measures loudness.

const WG: u32 = 256u;
const TINY: f32 = 1.1754944e-38;

struct YinParams {
    frames: u32,
    frame_length: u32,
    win_length: u32,
    hop: u32,
    tau_min: u32,
    tau_max: u32,
    threshold: f32,
    sample_rate: f32,
}

@group(0) @binding(0) var<uniform> p: YinParams;
// Padded signal: frame f covers samples[f * hop .. f * hop + frame_length].
@group(0) @binding(1) var<storage, read> samples: array<f32>;
// frames × (tau_max + 1); `pick` overwrites rows with the normalised difference.
@group(0) @binding(2) var<storage, read_write> diff: array<f32>;
// Per frame: f0_hz, confidence, loudness_db.
@group(0) @binding(3) var<storage, read_write> track: array<f32>;

@compute @workgroup_size(256)
fn difference(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    let row = p.tau_max + 1u;
    if (index >= p.frames * row) {
        return;
    }
    let frame = index / row;
    let tau = index % row;
    let start = frame * p.hop;
    var sum = 0.0;
    for (var j = 0u; j < p.win_length; j++) {
        let d = samples[start + j] - samples[start + j + tau];
        sum += d * d;
    }
    diff[index] = sum;
}

fn cmnd(base: u32, tau: u32) -> f32 {
    return diff[base + tau];
}

@compute @workgroup_size(256)
fn pick(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let frame = (wid.y * nwg.x + wid.x) * WG + lid;
    if (frame >= p.frames) {
        return;
    }
    let base = frame * (p.tau_max + 1u);
    // Cumulative mean normalised difference, in place: d'(tau) = d(tau) / mean(d(1..=tau)).
    var running = 0.0;
    for (var tau = 1u; tau <= p.tau_max; tau++) {
        let d = diff[base + tau];
        running += d;
        diff[base + tau] = d / (running / f32(tau) + TINY);
    }
    // First trough below the threshold within [tau_min, tau_max], else the global minimum.
    var best = p.tau_min;
    for (var tau = p.tau_min; tau <= p.tau_max; tau++) {
        let v = cmnd(base, tau);
        if (v < cmnd(base, best)) {
            best = tau;
        }
        var trough: bool;
        if (tau == p.tau_min) {
            trough = v < cmnd(base, tau + 1u);
        } else if (tau == p.tau_max) {
            trough = v < cmnd(base, tau - 1u);
        } else {
            trough = v < cmnd(base, tau - 1u) && v <= cmnd(base, tau + 1u);
        }
        if (trough && v < p.threshold) {
            best = tau;
            break;
        }
    }
    // Parabolic refinement (zero at the ends of the range).
    var shift = 0.0;
    if (best > p.tau_min && best < p.tau_max) {
        let left = cmnd(base, best - 1u);
        let mid = cmnd(base, best);
        let right = cmnd(base, best + 1u);
        let a = right + left - 2.0 * mid;
        let b = (right - left) / 2.0;
        if (abs(b) < abs(a)) {
            shift = -b / a;
        }
    }
    let period = f32(best) + shift;
    let confidence = clamp(1.0 - cmnd(base, best), 0.0, 1.0);
    // Loudness: mean square over the whole frame, in dB full scale, floored at -100 dB.
    var energy = 0.0;
    let start = frame * p.hop;
    for (var j = 0u; j < p.frame_length; j++) {
        let x = samples[start + j];
        energy += x * x;
    }
    let mean_square = max(energy / f32(p.frame_length), 1e-10);
    track[frame * 3u] = p.sample_rate / period;
    track[frame * 3u + 1u] = confidence;
    track[frame * 3u + 2u] = 10.0 * log2(mean_square) / log2(10.0);
}
