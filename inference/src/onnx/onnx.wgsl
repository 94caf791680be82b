// The operators of an ONNX graph's GPU forward pass (onnx/gpu.rs), over
// f32 tensors of rank at most 6 (shapes padded with leading 1s). Every
// entry point takes one thread per output element; the parameter block is
// 64 words whose layout each entry point documents; booleans are 0.0/1.0.

const WG: u32 = 256u;
const RANK: u32 = 6u;

struct Params {
    w: array<vec4<u32>, 16>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn word(i: u32) -> u32 {
    return p.w[i / 4u][i % 4u];
}

fn thread(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// The offset of element `index` of the row-major domain whose dimensions
// start at word `dims`, in a tensor whose strides start at word `strides`.
fn offset_of(index: u32, dims: u32, strides: u32) -> u32 {
    var rest = index;
    var offset = 0u;
    for (var k = 0u; k < RANK; k++) {
        let axis = RANK - 1u - k;
        let dim = word(dims + axis);
        let i = rest % dim;
        rest = rest / dim;
        offset += i * word(strides + axis);
    }
    return offset;
}

// Words: 0 count, 1 op (0 neg, 1 relu, 2 sigmoid, 3 sqrt, 4 log).
@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    let x = a[i];
    var y = 0.0;
    switch word(1u) {
        case 0u: { y = -x; }
        case 1u: { y = max(x, 0.0); }
        case 2u: { y = 1.0 / (1.0 + exp(-x)); }
        case 3u: { y = sqrt(x); }
        default: { y = log(x); }
    }
    out[i] = y;
}

// Words: 0 count, 1 op (0 add, 1 sub, 2 mul, 3 div, 4 equal), 2..8 output
// dims, 8..14 a's strides, 14..20 b's strides (0 where broadcast).
@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    let x = a[offset_of(i, 2u, 8u)];
    let y = b[offset_of(i, 2u, 14u)];
    var z = 0.0;
    switch word(1u) {
        case 0u: { z = x + y; }
        case 1u: { z = x - y; }
        case 2u: { z = x * y; }
        case 3u: { z = x / y; }
        default: { z = select(0.0, 1.0, x == y); }
    }
    out[i] = z;
}

// Where: words 0 count, 2..8 output dims, 8..14 condition strides, 14..20
// x strides, 20..26 y strides.
@compute @workgroup_size(256)
fn choose(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    let condition = a[offset_of(i, 2u, 8u)] != 0.0;
    out[i] = select(c[offset_of(i, 2u, 20u)], b[offset_of(i, 2u, 14u)], condition);
}

// Copies with an index map: Transpose, Slice, Pad and the parts of Concat.
// Words: 0 count, 1 mode (0 constant fill, 1 reflect), 2 fill (f32 bits),
// 3 output base offset, 4..10 domain dims, 10..16 source strides, 16..22
// source begin (i32), 22..28 source dims, 28..34 output strides. Source
// index on each axis: domain index + begin, reflected or filled outside
// the source dims.
@compute @workgroup_size(256)
fn gather(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    var rest = i;
    var source = 0u;
    var destination = word(3u);
    var inside = true;
    for (var k = 0u; k < RANK; k++) {
        let axis = RANK - 1u - k;
        let dim = word(4u + axis);
        let index = rest % dim;
        rest = rest / dim;
        destination += index * word(28u + axis);
        let n = i32(word(22u + axis));
        var s = i32(index) + bitcast<i32>(word(16u + axis));
        if (s < 0 || s >= n) {
            if (word(1u) == 1u) {
                s = select(2 * (n - 1) - s, -s, s < 0);
            } else {
                inside = false;
                s = 0;
            }
        }
        source += u32(s) * word(10u + axis);
    }
    out[destination] = select(bitcast<f32>(word(2u)), a[source], inside);
}

// ReduceSum/Min/Max. Words: 0 outputs, 1 op (0 sum, 1 min, 2 max), 2..8
// output domain dims, 8..14 source strides of the output axes, 14..20
// reduced dims, 20..26 source strides of the reduced axes, 26 reduced count.
@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    let base = offset_of(i, 2u, 8u);
    let op = word(1u);
    var acc = select(select(0.0, 3.4e38, op == 1u), -3.4e38, op == 2u);
    for (var r = 0u; r < word(26u); r++) {
        let x = a[base + offset_of(r, 14u, 20u)];
        switch op {
            case 0u: { acc += x; }
            case 1u: { acc = min(acc, x); }
            default: { acc = max(acc, x); }
        }
    }
    out[i] = acc;
}

// 2-D convolution, NCHW, one group. Each thread computes a tile of
// M_TILE output channels by W_TILE neighbouring output columns, so every
// input value it loads serves up to M_TILE × W_TILE sums and every weight
// W_TILE. Words: 0 tiles, 1 N, 2 C, 3 H, 4 W, 5 M, 6 KH, 7 KW, 8 stride H,
// 9 stride W, 10 pad top, 11 pad left, 12 OH, 13 OW, 14 channel tiles,
// 15 column tiles. x in a, weights (M, C, KH, KW) in b, bias in c.
override M_TILE: u32 = 8u;
override W_TILE: u32 = 4u;

@compute @workgroup_size(256)
fn conv2d(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = thread(wid, nwg, lid);
    if (i >= word(0u)) {
        return;
    }
    let channels = word(2u);
    let h = i32(word(3u));
    let w = i32(word(4u));
    let m_count = word(5u);
    let kh_count = word(6u);
    let kw_count = word(7u);
    let stride_w = i32(word(9u));
    let oh_count = word(12u);
    let ow_count = word(13u);
    let column_tiles = word(15u);
    let channel_tiles = word(14u);
    let ow0 = (i % column_tiles) * W_TILE;
    let oh = (i / column_tiles) % oh_count;
    let m0 = ((i / (column_tiles * oh_count)) % channel_tiles) * M_TILE;
    let n = i / (column_tiles * oh_count * channel_tiles);
    let tap_count = channels * kh_count * kw_count;
    var acc: array<f32, 32>;
    for (var k = 0u; k < 32u; k++) {
        acc[k] = 0.0;
    }
    let row0 = i32(oh * word(8u)) - i32(word(10u));
    let col0 = i32(ow0) * stride_w - i32(word(11u));
    for (var ch = 0u; ch < channels; ch++) {
        let plane = (n * channels + ch) * u32(h) * u32(w);
        for (var kh = 0u; kh < kh_count; kh++) {
            let row = row0 + i32(kh);
            if (row < 0 || row >= h) {
                continue;
            }
            let line = plane + u32(row * w);
            let taps = (ch * kh_count + kh) * kw_count;
            for (var kw = 0u; kw < kw_count; kw++) {
                var x: array<f32, 32>;
                for (var t = 0u; t < W_TILE; t++) {
                    let col = col0 + i32(t) * stride_w + i32(kw);
                    x[t] = select(0.0, a[line + u32(clamp(col, 0, w - 1))], col >= 0 && col < w);
                }
                for (var j = 0u; j < M_TILE; j++) {
                    let m = min(m0 + j, m_count - 1u);
                    let weight = b[m * tap_count + taps + kw];
                    for (var t = 0u; t < W_TILE; t++) {
                        acc[j * W_TILE + t] += weight * x[t];
                    }
                }
            }
        }
    }
    for (var j = 0u; j < M_TILE; j++) {
        let m = m0 + j;
        if (m >= m_count) {
            break;
        }
        for (var t = 0u; t < W_TILE; t++) {
            let ow = ow0 + t;
            if (ow < ow_count) {
                out[((n * m_count + m) * oh_count + oh) * ow_count + ow] = acc[j * W_TILE + t] + c[m];
            }
        }
    }
}
