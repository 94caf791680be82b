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
// |spectrum|, computed once by `magnitudes` so that the 62 window reads of
// each bin in `separate` are plain loads rather than 62 square roots.
@group(0) @binding(3) var<storage, read> magnitude: array<f32>;
@group(0) @binding(4) var<storage, read_write> magnitude_out: array<f32>;

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

// Sorting-network width: medians of up to this many values sort them with
// the fixed network below; longer kernels fall back to ranking.
const NETWORK_SIZE: u32 = 32u;
// Pads a short window past its real values; magnitudes never reach it.
const PAD: f32 = 3.4028235e38;

// Compare-exchange of two network wires.
fn cs(v: ptr<function, array<f32, 32>>, a: u32, b: u32) {
    let x = (*v)[a];
    let y = (*v)[b];
    (*v)[a] = min(x, y);
    (*v)[b] = max(x, y);
}

// Batcher's odd-even merge sort of 32 values (Knuth, TAOCP vol. 3, 5.3.4,
// algorithm M): 191 compare-exchanges in 15 layers, every index a constant,
// so the values stay in registers and no lane branches. That is ~380
// min/max operations against ~960 rank comparisons for a median of 31.
fn sort32(v: ptr<function, array<f32, 32>>) {
    cs(v, 0u, 1u); cs(v, 2u, 3u); cs(v, 4u, 5u); cs(v, 6u, 7u); cs(v, 8u, 9u); cs(v, 10u, 11u);
    cs(v, 12u, 13u); cs(v, 14u, 15u); cs(v, 16u, 17u); cs(v, 18u, 19u); cs(v, 20u, 21u);
    cs(v, 22u, 23u); cs(v, 24u, 25u); cs(v, 26u, 27u); cs(v, 28u, 29u); cs(v, 30u, 31u);
    cs(v, 0u, 2u); cs(v, 1u, 3u); cs(v, 4u, 6u); cs(v, 5u, 7u); cs(v, 8u, 10u); cs(v, 9u, 11u);
    cs(v, 12u, 14u); cs(v, 13u, 15u); cs(v, 16u, 18u); cs(v, 17u, 19u); cs(v, 20u, 22u);
    cs(v, 21u, 23u); cs(v, 24u, 26u); cs(v, 25u, 27u); cs(v, 28u, 30u); cs(v, 29u, 31u);
    cs(v, 1u, 2u); cs(v, 5u, 6u); cs(v, 9u, 10u); cs(v, 13u, 14u); cs(v, 17u, 18u);
    cs(v, 21u, 22u); cs(v, 25u, 26u); cs(v, 29u, 30u);
    cs(v, 0u, 4u); cs(v, 1u, 5u); cs(v, 2u, 6u); cs(v, 3u, 7u); cs(v, 8u, 12u); cs(v, 9u, 13u);
    cs(v, 10u, 14u); cs(v, 11u, 15u); cs(v, 16u, 20u); cs(v, 17u, 21u); cs(v, 18u, 22u);
    cs(v, 19u, 23u); cs(v, 24u, 28u); cs(v, 25u, 29u); cs(v, 26u, 30u); cs(v, 27u, 31u);
    cs(v, 2u, 4u); cs(v, 3u, 5u); cs(v, 10u, 12u); cs(v, 11u, 13u); cs(v, 18u, 20u);
    cs(v, 19u, 21u); cs(v, 26u, 28u); cs(v, 27u, 29u);
    cs(v, 1u, 2u); cs(v, 3u, 4u); cs(v, 5u, 6u); cs(v, 9u, 10u); cs(v, 11u, 12u);
    cs(v, 13u, 14u); cs(v, 17u, 18u); cs(v, 19u, 20u); cs(v, 21u, 22u); cs(v, 25u, 26u);
    cs(v, 27u, 28u); cs(v, 29u, 30u);
    cs(v, 0u, 8u); cs(v, 1u, 9u); cs(v, 2u, 10u); cs(v, 3u, 11u); cs(v, 4u, 12u);
    cs(v, 5u, 13u); cs(v, 6u, 14u); cs(v, 7u, 15u); cs(v, 16u, 24u); cs(v, 17u, 25u);
    cs(v, 18u, 26u); cs(v, 19u, 27u); cs(v, 20u, 28u); cs(v, 21u, 29u); cs(v, 22u, 30u);
    cs(v, 23u, 31u);
    cs(v, 4u, 8u); cs(v, 5u, 9u); cs(v, 6u, 10u); cs(v, 7u, 11u); cs(v, 20u, 24u);
    cs(v, 21u, 25u); cs(v, 22u, 26u); cs(v, 23u, 27u);
    cs(v, 2u, 4u); cs(v, 3u, 5u); cs(v, 6u, 8u); cs(v, 7u, 9u); cs(v, 10u, 12u);
    cs(v, 11u, 13u); cs(v, 18u, 20u); cs(v, 19u, 21u); cs(v, 22u, 24u); cs(v, 23u, 25u);
    cs(v, 26u, 28u); cs(v, 27u, 29u);
    cs(v, 1u, 2u); cs(v, 3u, 4u); cs(v, 5u, 6u); cs(v, 7u, 8u); cs(v, 9u, 10u); cs(v, 11u, 12u);
    cs(v, 13u, 14u); cs(v, 17u, 18u); cs(v, 19u, 20u); cs(v, 21u, 22u); cs(v, 23u, 24u);
    cs(v, 25u, 26u); cs(v, 27u, 28u); cs(v, 29u, 30u);
    cs(v, 0u, 16u); cs(v, 1u, 17u); cs(v, 2u, 18u); cs(v, 3u, 19u); cs(v, 4u, 20u);
    cs(v, 5u, 21u); cs(v, 6u, 22u); cs(v, 7u, 23u); cs(v, 8u, 24u); cs(v, 9u, 25u);
    cs(v, 10u, 26u); cs(v, 11u, 27u); cs(v, 12u, 28u); cs(v, 13u, 29u); cs(v, 14u, 30u);
    cs(v, 15u, 31u);
    cs(v, 8u, 16u); cs(v, 9u, 17u); cs(v, 10u, 18u); cs(v, 11u, 19u); cs(v, 12u, 20u);
    cs(v, 13u, 21u); cs(v, 14u, 22u); cs(v, 15u, 23u);
    cs(v, 4u, 8u); cs(v, 5u, 9u); cs(v, 6u, 10u); cs(v, 7u, 11u); cs(v, 12u, 16u);
    cs(v, 13u, 17u); cs(v, 14u, 18u); cs(v, 15u, 19u); cs(v, 20u, 24u); cs(v, 21u, 25u);
    cs(v, 22u, 26u); cs(v, 23u, 27u);
    cs(v, 2u, 4u); cs(v, 3u, 5u); cs(v, 6u, 8u); cs(v, 7u, 9u); cs(v, 10u, 12u);
    cs(v, 11u, 13u); cs(v, 14u, 16u); cs(v, 15u, 17u); cs(v, 18u, 20u); cs(v, 19u, 21u);
    cs(v, 22u, 24u); cs(v, 23u, 25u); cs(v, 26u, 28u); cs(v, 27u, 29u);
    cs(v, 1u, 2u); cs(v, 3u, 4u); cs(v, 5u, 6u); cs(v, 7u, 8u); cs(v, 9u, 10u); cs(v, 11u, 12u);
    cs(v, 13u, 14u); cs(v, 15u, 16u); cs(v, 17u, 18u); cs(v, 19u, 20u); cs(v, 21u, 22u);
    cs(v, 23u, 24u); cs(v, 25u, 26u); cs(v, 27u, 28u); cs(v, 29u, 30u);
}

// The middle order statistic by ranking: element i is the median when
// exactly `count / 2` elements precede it (smaller, or equal with a lower
// index). Used for windows longer than the sorting network.
fn median_by_rank(values: ptr<function, array<f32, KERNEL_MAX>>, count: u32) -> f32 {
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

// The median of the first `count` values (`count` odd). `count` is a
// pipeline constant, so the branch and every index below fold at compile time.
fn median(values: ptr<function, array<f32, KERNEL_MAX>>, count: u32) -> f32 {
    if (count > NETWORK_SIZE) {
        return median_by_rank(values, count);
    }
    var v: array<f32, 32>;
    for (var i = 0u; i < NETWORK_SIZE; i++) {
        v[i] = select(PAD, (*values)[i], i < count);
    }
    sort32(&v);
    return v[count / 2u];
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
fn magnitudes(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    if (index >= p.planes * p.frames * p.bins) {
        return;
    }
    magnitude_out[index] = length(spectrum[index]);
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
        values[u32(d + half_h)] = magnitude[plane_base + local * p.bins + bin];
    }
    let harmonic = median(&values, KERNEL_HARMONIC);

    let half_p = i32(KERNEL_PERCUSSIVE / 2u);
    let row = plane_base + local_frame * p.bins;
    for (var d = -half_p; d <= half_p; d++) {
        let k = u32(reflect(i32(bin) + d, i32(p.bins)));
        values[u32(d + half_p)] = magnitude[row + k];
    }
    let percussive = median(&values, KERNEL_PERCUSSIVE);

    let mask_h = softmask(harmonic, percussive * p.margin_harmonic, p.power);
    let mask_p = softmask(percussive, harmonic * p.margin_percussive, p.power);
    let s = spectrum[row + bin];
    let out = (plane * p.core_frames + core_frame) * p.bins + bin;
    separated[out] = s * mask_h;
    separated[(p.planes * p.core_frames * p.bins) + out] = s * mask_p;
}
