// Band-limited resampling by a Hann-windowed sinc (Smith, "Digital Audio
// Resampling"): output sample j sits at input position t_j and is
// sum_i x[i] * c * sinc(c (t_j - i)) * hann((t_j - i) / R), R = zeros / c,
// where c <= 1 is the cutoff relative to the input's Nyquist frequency.
// Positions come per block of output samples from the host (exact integer
// base + f32 fraction), so f32 never holds a large sample index.

const WG: u32 = 256u;
const PI: f32 = 3.14159265358979;

struct ResampleParams {
    planes: u32,
    in_len: u32,
    out_len: u32,
    block: u32,
    // Input samples per output sample.
    step: f32,
    cutoff: f32,
    // Half-width of the kernel in input samples.
    radius: f32,
    _pad: u32,
}

struct BlockStart {
    base: i32,
    fraction: f32,
}

@group(0) @binding(0) var<uniform> p: ResampleParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> blocks: array<BlockStart>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn resample(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    if (index >= p.planes * p.out_len) {
        return;
    }
    let plane = index / p.out_len;
    let j = index % p.out_len;
    let start = blocks[j / p.block];
    // Position relative to input sample `base`.
    let offset = start.fraction + f32(j % p.block) * p.step;
    let whole = i32(floor(offset));
    let base = start.base + whole;
    let frac = offset - f32(whole);
    let reach = i32(ceil(p.radius));
    var sum = 0.0;
    for (var d = -reach; d <= reach + 1; d++) {
        let i = base + d;
        if (i < 0 || i >= i32(p.in_len)) {
            continue;
        }
        let x = frac - f32(d);
        if (abs(x) >= p.radius) {
            continue;
        }
        let y = p.cutoff * x;
        var sinc = 1.0;
        if (abs(y) > 1e-6) {
            sinc = sin(PI * y) / (PI * y);
        }
        let window = 0.5 + 0.5 * cos(PI * x / p.radius);
        sum += input[plane * p.in_len + u32(i)] * p.cutoff * sinc * window;
    }
    output[index] = sum;
}
