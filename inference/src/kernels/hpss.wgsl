// Harmonic/percussive soft masks (Fitzgerald 2010, as librosa.decompose.hpss):
// the magnitude spectrogram is median-filtered across time (harmonic) and
// across frequency (percussive), edges reflected as scipy's mode="reflect";
// each mask is softmask(X, X_ref * margin, power) with zeros where both are ~0.

const WG: u32 = 256u;
const KERNEL_MAX: u32 = 63u;
// Median lengths (odd, <= KERNEL_MAX), fixed per pipeline so that the
// loops below have constant trip counts and compile to straight-line code.
override KERNEL_HARMONIC: u32 = 31u;
override KERNEL_PERCUSSIVE: u32 = 31u;
const TINY: f32 = 1.1754944e-38;

struct HpssParams {
    bins: u32,
    planes: u32,
    // Frames per plane in the input spectrum buffer.
    frames: u32,
    // Global index of input buffer frame 0.
    frame_base: u32,
    // Frames in the whole signal (reflection edges).
    frames_total: u32,
    // Buffer-local index of the first frame to separate.
    core_offset: u32,
    // Frames per plane to separate.
    core_frames: u32,
    _reserved_0: u32,
    _reserved_1: u32,
    power: f32,
    margin_harmonic: f32,
    margin_percussive: f32,
}

@group(0) @binding(0) var<uniform> p: HpssParams;
@group(0) @binding(1) var<storage, read> spectrum: array<vec2<f32>>;
// planes [0, planes) harmonic, [planes, 2 planes) percussive; core frames only.
@group(0) @binding(2) var<storage, read_write> separated: array<vec2<f32>>;

// scipy.ndimage reflect: (d c b a | a b c d | d c b a).
fn reflect(i: i32, n: i32) -> i32 {
    let period = 2 * n;
    var m = i % period;
    if (m < 0) {
        m += period;
    }
    if (m >= n) {
        m = period - 1 - m;
    }
    return m;
}

// The middle order statistic by ranking: element i is the median when
// exactly `count / 2` elements precede it (smaller, or equal with a lower
// index). With `count` a pipeline constant every index is static, which
// SIMD-per-lane backends (lavapipe) run much faster than a sort's
// data-dependent swaps.
fn median(values: ptr<function, array<f32, KERNEL_MAX>>, count: u32) -> f32 {
    let mid = count / 2u;
    var result = 0.0;
    for (var i = 0u; i < count; i++) {
        let v = (*values)[i];
        var rank = 0u;
        for (var j = 0u; j < count; j++) {
            let w = (*values)[j];
            rank += select(0u, 1u, w < v || (w == v && j < i));
        }
        result = select(result, v, rank == mid);
    }
    return result;
}

// r^power for r in [0, 1]; WGSL leaves pow(0, y) undefined.
fn ratio_pow(r: f32, power: f32) -> f32 {
    if (r <= 0.0) {
        return 0.0;
    }
    return pow(r, power);
}

fn softmask(x: f32, x_ref: f32, power: f32) -> f32 {
    let z = max(x, x_ref);
    if (z < TINY) {
        return 0.0;
    }
    let a = ratio_pow(x / z, power);
    let b = ratio_pow(x_ref / z, power);
    return a / (a + b);
}

@compute @workgroup_size(256)
fn separate(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    if (index >= p.planes * p.core_frames * p.bins) {
        return;
    }
    let bin = index % p.bins;
    let core_frame = (index / p.bins) % p.core_frames;
    let plane = index / (p.bins * p.core_frames);
    let local_frame = core_frame + p.core_offset;
    let global_frame = i32(local_frame + p.frame_base);
    let plane_base = plane * p.frames * p.bins;

    var values: array<f32, KERNEL_MAX>;
    let half_h = i32(KERNEL_HARMONIC / 2u);
    for (var d = -half_h; d <= half_h; d++) {
        let g = reflect(global_frame + d, i32(p.frames_total));
        let local = u32(g - i32(p.frame_base));
        values[u32(d + half_h)] = length(spectrum[plane_base + local * p.bins + bin]);
    }
    let harmonic = median(&values, KERNEL_HARMONIC);

    let half_p = i32(KERNEL_PERCUSSIVE / 2u);
    let row = plane_base + local_frame * p.bins;
    for (var d = -half_p; d <= half_p; d++) {
        let k = u32(reflect(i32(bin) + d, i32(p.bins)));
        values[u32(d + half_p)] = length(spectrum[row + k]);
    }
    let percussive = median(&values, KERNEL_PERCUSSIVE);

    let mask_h = softmask(harmonic, percussive * p.margin_harmonic, p.power);
    let mask_p = softmask(percussive, harmonic * p.margin_percussive, p.power);
    let s = spectrum[row + bin];
    let out = (plane * p.core_frames + core_frame) * p.bins + bin;
    separated[out] = s * mask_h;
    separated[(p.planes * p.core_frames * p.bins) + out] = s * mask_p;
}
