// Phase vocoder (Flanagan & Golden 1966; librosa.phase_vocoder): output frame t
// reads input frames floor(t*rate) and the next, interpolates their magnitudes
// and advances each bin's phase by its expected advance plus the measured
// deviation. One thread per (plane, bin) walks the segment's output frames in
// order, carrying the phase accumulator between segments through `phase_in`
// and `phase_out`. The accumulator is kept wrapped to [-pi, pi) so f32 does not
// lose it over long signals (the same phasor as librosa's unwrapped sum).

const WG: u32 = 256u;
const PI: f32 = 3.14159265358979;
const TWO_PI: f32 = 6.28318530717959;

struct VocoderParams {
    bins: u32,
    planes: u32,
    n_fft: u32,
    hop: u32,
    // Input frames per plane in `spectrum`, and the global index of the first.
    in_frames: u32,
    in_base: u32,
    // Frames in the whole input STFT; frames past it read as zeros.
    in_frames_total: u32,
    // Output frames t_begin..t_end (global) are written, t_begin at row 0.
    t_begin: u32,
    t_end: u32,
    // The accumulator at this output frame is saved to `phase_out`.
    t_checkpoint: u32,
    // 1 when t_begin is 0: the accumulator starts at input frame 0's phase.
    initialize: u32,
    _pad: u32,
}

struct Step {
    frame: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: VocoderParams;
@group(0) @binding(1) var<storage, read> spectrum: array<vec2<f32>>;
// Output frame t reads input frames steps[t].frame and steps[t].frame + 1.
@group(0) @binding(2) var<storage, read> steps: array<Step>;
@group(0) @binding(3) var<storage, read> phase_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> phase_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stretched: array<vec2<f32>>;

fn column(plane: u32, frame: u32, bin: u32) -> vec2<f32> {
    if (frame >= p.in_frames_total) {
        return vec2<f32>(0.0, 0.0);
    }
    return spectrum[(plane * p.in_frames + frame - p.in_base) * p.bins + bin];
}

fn angle(v: vec2<f32>) -> f32 {
    if (v.x == 0.0 && v.y == 0.0) {
        return 0.0;
    }
    return atan2(v.y, v.x);
}

fn wrap(x: f32) -> f32 {
    return x - TWO_PI * floor((x + PI) / TWO_PI);
}

@compute @workgroup_size(256)
fn stretch(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    if (index >= p.planes * p.bins) {
        return;
    }
    let plane = index / p.bins;
    let bin = index % p.bins;
    // Expected advance 2 pi hop k / n_fft, reduced mod 2 pi exactly in integers.
    let advance = TWO_PI * f32((p.hop * bin) % p.n_fft) / f32(p.n_fft);
    var phase: f32;
    if (p.initialize == 1u) {
        phase = angle(column(plane, 0u, bin));
    } else {
        phase = phase_in[index];
    }
    let rows = p.t_end - p.t_begin;
    for (var row = 0u; row < rows; row++) {
        let t = p.t_begin + row;
        if (t == p.t_checkpoint) {
            phase_out[index] = phase;
        }
        let step = steps[t];
        let c0 = column(plane, step.frame, bin);
        let c1 = column(plane, step.frame + 1u, bin);
        let magnitude = (1.0 - step.alpha) * length(c0) + step.alpha * length(c1);
        stretched[(plane * rows + row) * p.bins + bin] = magnitude * vec2<f32>(cos(phase), sin(phase));
        var deviation = angle(c1) - angle(c0) - advance;
        deviation = deviation - TWO_PI * round(deviation / TWO_PI);
        phase = wrap(phase + advance + deviation);
    }
    if (p.t_end == p.t_checkpoint) {
        phase_out[index] = phase;
    }
}
