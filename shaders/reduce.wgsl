// Reductions over any set of dims of a strided tensor: out[o] = reduce_{r} x[outer(o) + inner(r)],
// where `outer` walks the kept dims and `inner` the reduced ones (each up to 8 dims, strided).
// OP: 0 sum, 1 max, 2 min, 3 argmax (index into the flattened reduced dims, as f32), 4 argmin.
// Accumulates in f32. `reduce_serial`: one invocation per output (short rows, many outputs);
// `reduce_workgroup`: 64 invocations per output with a tree in workgroup memory (long rows).
// #include _strided

override OP: u32 = 0u;

struct Params {
  outer_shape: array<vec4<u32>, 2>,
  outer_strides: array<vec4<u32>, 2>,
  inner_shape: array<vec4<u32>, 2>,
  inner_strides: array<vec4<u32>, 2>,
  outer_ndim: u32,
  inner_ndim: u32,
  n_out: u32,
  n_inner: u32,
  offset: u32,
  scale: f32,
  identity: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// The identity of the reduction, from the uniform (WGSL has no infinite constants): 0 for sum,
// -inf for max (so a row of -inf still has a maximum, at index 0), +inf for min.
fn init_value() -> f32 {
  return params.identity;
}

// Combines (acc, acc_index) with (v, v_index); NaN propagates through max/min like PyTorch.
fn combine(acc: vec2<f32>, v: vec2<f32>) -> vec2<f32> {
  switch OP {
    case 0u: { return vec2<f32>(acc.x + v.x, 0.0); }
    case 1u, 3u: {
      if (v.x > acc.x || (v.x == acc.x && v.y < acc.y) || v.x != v.x) { return v; }
      return acc;
    }
    case 2u, 4u: {
      if (v.x < acc.x || (v.x == acc.x && v.y < acc.y) || v.x != v.x) { return v; }
      return acc;
    }
    default: { return acc; }
  }
}

fn result(acc: vec2<f32>) -> f32 {
  if (OP == 3u || OP == 4u) { return acc.y; }
  return acc.x * params.scale;
}

@compute @workgroup_size(64)
fn reduce_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 64u);
  if (o >= params.n_out) { return; }
  let base = params.offset + strided_offset(o, params.outer_ndim, params.outer_shape, params.outer_strides);
  var acc = vec2<f32>(init_value(), 3.4028234663852886e38);
  for (var r = 0u; r < params.n_inner; r++) {
    let v = x[base + strided_offset(r, params.inner_ndim, params.inner_shape, params.inner_strides)];
    acc = combine(acc, vec2<f32>(v, f32(r)));
  }
  out[o] = result(acc);
}

var<workgroup> partial: array<vec2<f32>, 64>;

@compute @workgroup_size(64)
fn reduce_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  let valid = o < params.n_out;
  var acc = vec2<f32>(init_value(), 3.4028234663852886e38);
  if (valid) {
    let base = params.offset + strided_offset(o, params.outer_ndim, params.outer_shape, params.outer_strides);
    for (var r = lid; r < params.n_inner; r += 64u) {
      let v = x[base + strided_offset(r, params.inner_ndim, params.inner_shape, params.inner_strides)];
      acc = combine(acc, vec2<f32>(v, f32(r)));
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] = combine(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { out[o] = result(partial[0]); }
}
