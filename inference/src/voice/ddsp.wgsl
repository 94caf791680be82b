// Harmonic-plus-noise synthesis (DDSP-style), one thread per output sample.
// The host plans every frame (phase at the frame's first sample, harmonic
// amplitudes, noise FIR) so that each sample depends only on its two
// surrounding frames; `ddsp.rs` holds the CPU twin of `synthesize`, which
// performs the same f32 operations in the same order.

const WG: u32 = 256u;
const TAU: f32 = 6.2831855;

struct DdspParams {
    // Samples in this chunk.
    len: u32,
    // Absolute index of the chunk's first sample (the noise is indexed by it).
    sample_base: u32,
    // Absolute index of the first frame uploaded.
    frame_base: u32,
    hop: u32,
    harmonics: u32,
    taps: u32,
    sample_rate: f32,
    seed: u32,
}

@group(0) @binding(0) var<uniform> p: DdspParams;
// Per frame: f0 driving the phase (Hz), phase at the frame's first sample
// (cycles), harmonics on (0/1), noise on (0/1).
@group(0) @binding(1) var<storage, read> frames: array<vec4<f32>>;
// frames × harmonics linear amplitudes (0 above Nyquist).
@group(0) @binding(2) var<storage, read> amplitudes: array<f32>;
// frames × taps noise FIR coefficients, gain included.
@group(0) @binding(3) var<storage, read> filters: array<f32>;
// 2 × len: the harmonic part, then the noise part.
@group(0) @binding(4) var<storage, read_write> parts: array<f32>;

// sin(2 pi p): reduced to a quarter period and evaluated with the degree-11
// Taylor polynomial (error below 6e-8), so the result does not depend on a
// device's sin(), which Vulkan only bounds to 2^-11 absolute error.
fn sin_cycles(p: f32) -> f32 {
    var r = p - floor(p + 0.5);
    if (r > 0.25) {
        r = 0.5 - r;
    } else if (r < -0.25) {
        r = -0.5 - r;
    }
    let x = TAU * r;
    let x2 = x * x;
    return x * (1.0 + x2 * (-0.16666667 + x2 * (0.008333333 + x2 * (-0.0001984127
        + x2 * (0.0000027557319 + x2 * -0.000000025052108)))));
}

// lowbias32 (Chris Wellons' integer hash): white noise as a pure function of
// the sample index, identical on every backend.
fn white(index: u32) -> f32 {
    var v = index ^ p.seed;
    v ^= v >> 16u;
    v *= 0x7feb352du;
    v ^= v >> 15u;
    v *= 0x846ca68bu;
    v ^= v >> 16u;
    return f32(v >> 8u) * (1.0 / 8388608.0) - 1.0;
}

@compute @workgroup_size(256)
fn synthesize(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let local = (wid.y * nwg.x + wid.x) * WG + lid;
    if (local >= p.len) {
        return;
    }
    let n = p.sample_base + local;
    let i = n / p.hop - p.frame_base;
    let j = n % p.hop;
    let alpha = f32(j) / f32(p.hop);
    let a = frames[i];
    let b = frames[i + 1u];

    var harmonic = 0.0;
    if (a.z != 0.0 || b.z != 0.0) {
        // Phase advanced by the linear f0 ramp from frame i to frame i + 1:
        // sum over m < j of (fa + (fb - fa) m / hop), in cycles.
        let jf = f32(j);
        let cycles = (jf * a.x + (b.x - a.x) * jf * (jf - 1.0) / (2.0 * f32(p.hop))) / p.sample_rate;
        for (var k = 0u; k < p.harmonics; k++) {
            let a0 = amplitudes[i * p.harmonics + k];
            let a1 = amplitudes[(i + 1u) * p.harmonics + k];
            if (a0 != 0.0 || a1 != 0.0) {
                let amp = a0 + alpha * (a1 - a0);
                let kf = f32(k + 1u);
                let c = kf * a.y + kf * cycles;
                harmonic += amp * sin_cycles(c - floor(c));
            }
        }
    }

    var noise = 0.0;
    if (a.w != 0.0 || b.w != 0.0) {
        for (var t = 0u; t < p.taps; t++) {
            let h0 = filters[i * p.taps + t];
            let h1 = filters[(i + 1u) * p.taps + t];
            noise += (h0 + alpha * (h1 - h0)) * white(n + t);
        }
    }
    parts[local] = harmonic;
    parts[p.len + local] = noise;
}
