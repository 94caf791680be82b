// Mixdown and per-stem energy. `mix` sums gain-scaled stems sample by
// sample; `energy` reduces each gain-scaled stem's sum of squares per
// workgroup (tree reduction in workgroup memory), the host adds the partials.

const WG: u32 = 256u;

struct MixParams {
    stems: u32,
    planes: u32,
    // Samples per plane in this chunk.
    len: u32,
    // Workgroups per stem in `energy`.
    groups_per_stem: u32,
}

@group(0) @binding(0) var<uniform> p: MixParams;
// stems × planes × len.
@group(0) @binding(1) var<storage, read> stems: array<f32>;
@group(0) @binding(2) var<storage, read> gains: array<f32>;
// planes × len.
@group(0) @binding(3) var<storage, read_write> mixed: array<f32>;
// stems × groups_per_stem.
@group(0) @binding(4) var<storage, read_write> partial_energy: array<f32>;

var<workgroup> scratch: array<f32, WG>;

@compute @workgroup_size(256)
fn mix(@builtin(workgroup_id) wid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let index = (wid.y * nwg.x + wid.x) * WG + lid;
    let plane_len = p.planes * p.len;
    if (index >= plane_len) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < p.stems; s++) {
        sum += gains[s] * stems[s * plane_len + index];
    }
    mixed[index] = sum;
}

@compute @workgroup_size(256)
fn energy(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let group = wid.y * nwg.x + wid.x;
    if (group >= p.stems * p.groups_per_stem) {
        return;
    }
    let stem = group / p.groups_per_stem;
    let part = group % p.groups_per_stem;
    let plane_len = p.planes * p.len;
    let gain = gains[stem];
    var sum = 0.0;
    for (var i = part * WG + lid; i < plane_len; i += p.groups_per_stem * WG) {
        let x = gain * stems[stem * plane_len + i];
        sum += x * x;
    }
    scratch[lid] = sum;
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        workgroupBarrier();
        if (lid < width) {
            scratch[lid] += scratch[lid + width];
        }
    }
    if (lid == 0u) {
        partial_energy[group] = scratch[0];
    }
}
