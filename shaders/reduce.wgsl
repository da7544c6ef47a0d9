// Reductions over any set of dims of a strided tensor: out[o] = reduce_{r} x[outer(o) + inner(r)],
// where `outer` walks the kept dims and `inner` the reduced ones (each up to 8 dims, strided).
// OP: 0 sum, 1 max, 2 min, 3 argmax (index into the flattened reduced dims, as f32), 4 argmin.
// Accumulates in f32. `reduce_serial`: one invocation per output (short rows, many outputs);
// `reduce_workgroup`: 64 invocations per output with a tree in workgroup memory (long rows);
// `reduce_chunk` + `reduce_merge`: rows too long for one workgroup, split into chunks of `chunk`
// elements, each reduced by one workgroup into `partial`, then merged per output in a fixed order.
// Bound: Mesa's llvmpipe (gallivm; Mesa 22.3.6 through Dawn's OpenGL backend) counts the loop passes
// of an invocation (one counter of 65535 per batch of 8 invocations, shared by all loops, inner
// loops in full) and silently leaves every loop once it runs out; here each element costs its loop
// pass plus inner_ndim + 1 passes of inner_offset's dim loop, so a sum over a [1, 1, 64, 128, 128]
// volume (16384 elements per invocation, 7 passes each) came out wrong. The host (src/ops/reduce.ts)
// picks the kernel and chunk so that no invocation runs more than LOOP_BUDGET (16384) passes.
// No infinities or NaN tests the compiler may fold: an accumulator is (value, index), and one that
// has seen no element yet has the index EMPTY (max/min take the first element they see, whatever it
// is, so they need no -inf/+inf identity); NaN is found by its bits and propagates (the first one).
// #include _strided
// #include _float

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
  chunk: u32,   // elements per chunk (reduce_chunk)
  chunks: u32,  // chunks per output (reduce_chunk, reduce_merge)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// The index of an accumulator that has seen no element.
const EMPTY: f32 = F32_MAX;

// An accumulator that has seen no element: the sum's identity 0 and EMPTY (max and min never
// compare with its value).
fn init_value() -> vec2<f32> {
  return vec2<f32>(0.0, EMPTY);
}

// Whether (v, v_index) wins over (acc, acc_index) for max (larger) or min: an empty side loses; a
// NaN wins over numbers, the earlier of two NaN wins (PyTorch returns the first NaN); then the larger
// (smaller) value, then the earlier index.
fn wins(acc: vec2<f32>, v: vec2<f32>, larger: bool) -> bool {
  if (v.y == EMPTY) { return false; }
  if (acc.y == EMPTY) { return true; }
  let vn = is_nan(v.x);
  let an = is_nan(acc.x);
  if (vn || an) { return vn && (!an || v.y < acc.y); }
  if (v.x == acc.x) { return v.y < acc.y; }
  return select((v.x < acc.x), (v.x > acc.x), larger);
}

// Combines (acc, acc_index) with (v, v_index).
fn combine(acc: vec2<f32>, v: vec2<f32>) -> vec2<f32> {
  if (OP == 0u) { return vec2<f32>(acc.x + v.x, 0.0); }
  return select(acc, v, wins(acc, v, OP == 1u || OP == 3u));
}

// Offsets of output o's row start and of element r within a row: the dims are read from the
// uniform in place, not passed as arrays (_strided's strided_offset takes them by value: a copy into
// function memory and dynamic indexing of it per element, which made reduce_serial ~20x slower than
// an elementwise op of the same size on SwiftShader).
fn outer_offset(o: u32) -> u32 {
  var rem = o;
  var off = params.offset;
  for (var d = i32(params.outer_ndim) - 1; d >= 0; d--) {
    let n = params.outer_shape[u32(d) / 4u][u32(d) % 4u];
    let next = rem / n;
    off += (rem - next * n) * params.outer_strides[u32(d) / 4u][u32(d) % 4u];
    rem = next;
  }
  return off;
}

fn inner_offset(r: u32) -> u32 {
  if (params.inner_ndim == 1u) { return r * params.inner_strides[0][0]; } // the common case once dims are merged
  var rem = r;
  var off = 0u;
  for (var d = i32(params.inner_ndim) - 1; d >= 0; d--) {
    let n = params.inner_shape[u32(d) / 4u][u32(d) % 4u];
    let next = rem / n;
    off += (rem - next * n) * params.inner_strides[u32(d) / 4u][u32(d) % 4u];
    rem = next;
  }
  return off;
}

fn result(acc: vec2<f32>) -> f32 {
  if (OP == 3u || OP == 4u) { return acc.y; }
  return acc.x * params.scale;
}

@compute @workgroup_size(64)
fn reduce_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 64u);
  if (o >= params.n_out) { return; }
  let base = outer_offset(o);
  var acc = init_value();
  for (var r = 0u; r < params.n_inner; r++) {
    let v = x[base + inner_offset(r)];
    acc = combine(acc, vec2<f32>(v, f32(r)));
  }
  out[o] = result(acc);
}

var<workgroup> partial: array<vec2<f32>, 64>;

// Combines the 64 invocations' values in a tree; the result is valid in invocation 0.
fn wg_combine(lid: u32, acc: vec2<f32>) -> vec2<f32> {
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] = combine(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  return partial[0];
}

// Elements [r0, r1) of output o's row, every 64th one per invocation.
fn row_range(o: u32, r0: u32, r1: u32, lid: u32) -> vec2<f32> {
  var acc = init_value();
  let base = outer_offset(o);
  for (var r = r0 + lid; r < r1; r += 64u) {
    let v = x[base + inner_offset(r)];
    acc = combine(acc, vec2<f32>(v, f32(r)));
  }
  return acc;
}

@compute @workgroup_size(64)
fn reduce_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  let valid = o < params.n_out;
  var acc = init_value();
  if (valid) { acc = row_range(o, 0u, params.n_inner, lid); }
  let total = wg_combine(lid, acc);
  if (lid == 0u && valid) { out[o] = result(total); }
}

// ---- rows split into chunks: workgroup (p, o) reduces chunk p of output o's row ----
@group(0) @binding(3) var<storage, read_write> chunk_out: array<vec2<f32>>;

@compute @workgroup_size(64)
fn reduce_chunk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x;
  let o = wid.z * nwg.y + wid.y;
  let valid = o < params.n_out;
  var acc = init_value();
  if (valid) { acc = row_range(o, p * params.chunk, min(params.n_inner, (p + 1u) * params.chunk), lid); }
  let total = wg_combine(lid, acc);
  if (lid == 0u && valid) { chunk_out[o * params.chunks + p] = total; }
}

// Merges output o's chunk results (each invocation every 64th chunk, then the tree).
@compute @workgroup_size(64)
fn reduce_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.y * nwg.x + wid.x;
  let valid = o < params.n_out;
  var acc = init_value();
  if (valid) {
    for (var q = lid; q < params.chunks; q += 64u) { acc = combine(acc, chunk_out[o * params.chunks + q]); }
  }
  let total = wg_combine(lid, acc);
  if (lid == 0u && valid) { out[o] = result(total); }
}
