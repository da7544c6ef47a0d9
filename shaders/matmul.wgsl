// Batched matmul with an optional fused bias: out[b, m, n] = sum_k A[b, m, k] * B[b, k, n] + bias[n].
// A and B are strided views (a transpose is a stride swap, never a copy) with broadcast batch dims
// (stride 0); out is contiguous [batch, M, N]. f32 accumulation.
//   matmul_naive: one invocation per output; the reference variant.
//   matmul_blocked: each invocation computes a BTMxBTN block straight from global memory (no
//                 workgroup memory, no barriers): 8 loads per 16 FMAs. For CPU adapters, where
//                 caches serve the reuse and barriers are expensive.
//   matmul_tiled: a workgroup of 16x16 invocations computes a BMx64 output tile (BM = 16*TM) with
//                 the GEMM tile core (_gemm_tile.wgsl, shared with the conv kernels), staging
//                 TK-deep slices of A and B in workgroup memory; each invocation keeps TMx4
//                 accumulators in registers.
// Every variant runs the k range [k_begin, k_end) of one launch: the host splits K into slices
// (src/ops/matmul.ts: 8192 for naive and blocked; for tiled, what its tile's loop passes allow,
// counted as _gemm_tile.wgsl says: 2416 at TK 16, TM 4), a launch after the first starts from the
// partial sums in `out`, and only the last one (k_end == K) adds the bias, so the sums run in the
// same order as one K loop.
// Why: Mesa's llvmpipe (gallivm, Mesa 22.3.6 through Dawn's OpenGL backend) counts the loop passes of
// a shader invocation (one counter of 65535 for each batch of 8 invocations, shared by every loop
// and pass, inner loops included) and silently leaves every loop once it runs out: a K loop of 70000
// returned the sum of its first ~65535 terms. A slice keeps every invocation within LOOP_BUDGET
// (16384) passes.
// #include _strided

// matmul_tiled's tile knobs (the tuner's tile-size variants, src/ops/matmul.ts): TK, the depth of
// a staged slice (8, 16 or 32: fewer barriers per FMA as it grows), and TM, the rows per
// invocation (1, 2 or 4: 16-, 32- or 64-row tiles); tiles are 64 columns wide.
override TK: u32 = 16u;
override TM: u32 = 4u;
override BM: u32 = 16u * TM;
const BN: u32 = 64u;
// matmul_blocked's register block per invocation
const BTM: u32 = 4u;
const BTN: u32 = 4u;

struct Params {
  batch_shape: array<vec4<u32>, 2>,
  a_batch_strides: array<vec4<u32>, 2>,
  b_batch_strides: array<vec4<u32>, 2>,
  batch_ndim: u32,
  batch: u32,
  M: u32,
  N: u32,
  K: u32,
  a_offset: u32,
  a_stride_m: u32,
  a_stride_k: u32,
  b_offset: u32,
  b_stride_k: u32,
  b_stride_n: u32,
  bias_offset: u32,
  has_bias: u32,
  k_begin: u32,
  k_end: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn batch_offsets(bi: u32) -> vec2<u32> {
  let oa = params.a_offset + strided_offset(bi, params.batch_ndim, params.batch_shape, params.a_batch_strides);
  let ob = params.b_offset + strided_offset(bi, params.batch_ndim, params.batch_shape, params.b_batch_strides);
  return vec2<u32>(oa, ob);
}

fn epilogue(acc: f32, n: u32) -> f32 {
  if (params.has_bias != 0u && params.k_end == params.K) { return acc + bias[params.bias_offset + n]; }
  return acc;
}

@compute @workgroup_size(16, 16)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  let bi = gid.z;
  if (m >= params.M || n >= params.N || bi >= params.batch) { return; }
  let o = batch_offsets(bi);
  let oi = (bi * params.M + m) * params.N + n;
  var acc = 0.0;
  if (params.k_begin > 0u) { acc = out[oi]; }
  for (var k = params.k_begin; k < params.k_end; k++) {
    acc += a[o.x + m * params.a_stride_m + k * params.a_stride_k] * b[o.y + k * params.b_stride_k + n * params.b_stride_n];
  }
  out[oi] = epilogue(acc, n);
}

// matmul_tiled's state for the tile core's hooks: the tile's first row and column and the batch's
// element offsets into a and b.
struct TileState {
  m0: u32,
  n0: u32,
  o: vec2<u32>,
}
var<private> ts: TileState;

fn gemm_load_a(mm: u32, k: u32, kk: u32) -> f32 {
  let m = ts.m0 + mm;
  if (m >= params.M) { return 0.0; }
  return a[ts.o.x + m * params.a_stride_m + k * params.a_stride_k];
}

fn gemm_load_b(nn: u32, k: u32, kk: u32) -> f32 {
  let n = ts.n0 + nn;
  if (n >= params.N) { return 0.0; }
  return b[ts.o.y + k * params.b_stride_k + n * params.b_stride_n];
}

fn gemm_prefetch(k0: u32) {}

// #include _gemm_tile

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let bi = wid.z;
  ts.m0 = wid.y * BM;
  ts.n0 = wid.x * BN;
  ts.o = batch_offsets(bi);
  var acc: array<vec4<f32>, 4>; // [i] holds the TN = 4 columns lid.x + 16*j
  if (params.k_begin > 0u) {
    for (var i = 0u; i < TM; i++) {
      let m = ts.m0 + lid.y + 16u * i;
      for (var j = 0u; j < 4u; j++) {
        let n = ts.n0 + lid.x + 16u * j;
        if (m < params.M && n < params.N) { acc[i][j] = out[(bi * params.M + m) * params.N + n]; }
      }
    }
  }
  acc = gemm_tile(lid, params.k_begin, params.k_end, acc);
  for (var i = 0u; i < TM; i++) {
    let m = ts.m0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let n = ts.n0 + lid.x + 16u * j;
      if (m < params.M && n < params.N) { out[(bi * params.M + m) * params.N + n] = epilogue(acc[i][j], n); }
    }
  }
}

@compute @workgroup_size(16, 16)
fn matmul_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
  let bi = gid.z;
  let m0 = gid.y * BTM;
  let n0 = gid.x * BTN;
  if (m0 >= params.M || n0 >= params.N || bi >= params.batch) { return; }
  let o = batch_offsets(bi);
  // Clamp rows/cols that fall off the edge to the last valid one; their results are not stored.
  var ra: array<u32, BTM>;
  var cb: array<u32, BTN>;
  for (var i = 0u; i < BTM; i++) { ra[i] = o.x + min(m0 + i, params.M - 1u) * params.a_stride_m; }
  for (var j = 0u; j < BTN; j++) { cb[j] = o.y + min(n0 + j, params.N - 1u) * params.b_stride_n; }
  var acc: array<array<f32, BTN>, BTM>;
  if (params.k_begin > 0u) {
    for (var i = 0u; i < BTM; i++) {
      for (var j = 0u; j < BTN; j++) {
        if (m0 + i < params.M && n0 + j < params.N) { acc[i][j] = out[(bi * params.M + m0 + i) * params.N + n0 + j]; }
      }
    }
  }
  for (var k = params.k_begin; k < params.k_end; k++) {
    var av: array<f32, BTM>;
    var bv: array<f32, BTN>;
    for (var i = 0u; i < BTM; i++) { av[i] = a[ra[i] + k * params.a_stride_k]; }
    for (var j = 0u; j < BTN; j++) { bv[j] = b[cb[j] + k * params.b_stride_k]; }
    for (var i = 0u; i < BTM; i++) {
      for (var j = 0u; j < BTN; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); }
    }
  }
  for (var i = 0u; i < BTM; i++) {
    let m = m0 + i;
    for (var j = 0u; j < BTN; j++) {
      let n = n0 + j;
      if (m < params.M && n < params.N) { out[(bi * params.M + m) * params.N + n] = epilogue(acc[i][j], n); }
    }
  }
}
