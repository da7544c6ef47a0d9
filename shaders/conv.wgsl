// N-d convolution as an implicit GEMM, one design for conv1d/2d/3d (1d and 2d are 3d with unit
// dims), stride, asymmetric padding, dilation and groups. Layouts as PyTorch: activations
// [batch, C, D, H, W] contiguous, conv weight [Cout, Cin/g, kD, kH, kW], transposed-conv weight
// [Cin, Cout/g, kD, kH, kW]. Per group g the kernel computes out[m, n] = sum_k A[m, k] * B[k, n]
// (f32 accumulation); MODE (override) picks the loaders that build A and B on the fly:
//   MODE 0, conv:        M = Cout/g, N = batch*outVox, K = Cin/g*kVol.
//                        A[m, k] = W[g*M+m, ci, kp];  B[k, n] = X[b, g*Cin_g+ci, o*s - p + kp*dil]
//   MODE 1, transposed:  the gather form (each output reads the inputs that reach it), same M,N,K.
//                        A[m, k] = W[g*Cin_g+ci, m, kp];  B[k, n] = X[b, g*Cin_g+ci, (j + p - kp*dil)/s]
//                        where that division is exact and in range, else 0. Also conv's dX.
//   MODE 3, transposed by phases (stride > 1, dilation 1): outputs j with (j + p) % s == r (per
//                        axis, the phase r) are reached only by taps k = r + s*t, from inputs
//                        i = (j + p - r)/s - t, so each phase is a dense conv with no wasted taps
//                        and no division: z also runs over the s_d*s_h*s_w phases (`phases`).
//   MODE 2, weight grad: dW[g*M+a, ci, kp] = sum_{b,o} G[b, g*M+a, o] * IN[b, g*Cin_g+ci, o*s - p + kp*dil]
//                        M = G channels per group, N = Cin_g*kVol, K = batch*vol(G); out is dW
//                        [groups*M, N].
// (k = ci*kVol + kp, n = b*outVox + o; spatial indices unravel D,H,W row-major.)
// Epilogue (MODE 0, 1 and 3): + bias[c], optional residual add before or after the activation
// (ACT: 0 none, 1 relu, 2 elu(alpha), 3 prelu(weight per channel or one), 4 gelu), and the
// pre-activation value stored to `pre` when the backward pass needs it.
// Split K (every mode): with splits > 1, z also runs over `splits` chunks of k_chunk reduction
// steps, and each invocation writes its chunk's partial sums for the columns n0 .. n0+slab_n of a
// slab to out as [splits, groups, phases, M, slab_n]; conv_finish sums them pairwise and stores
// them as above (through the epilogue). The caller sizes k_chunk so that no invocation runs more
// than a fixed number of loop iterations whatever K is (llvmpipe silently leaves every loop of an
// invocation once 65535 iterations have run in it), which also keeps each f32 running sum short.
//   conv_naive: one invocation per output column and MR rows, the chunk's reduction as one loop
//               (the tap indices stepped like an odometer); the reference variant, and for small problems.
//   conv_tiled: a 16x16 workgroup computes a (16*TM)x64 output tile with the GEMM tile core
//               (_gemm_tile.wgsl, shared with matmul), its loaders the gathers above.
//   conv_finish: the split reduction's partials summed pairwise (sum_splits), then stored.
//   conv_fold:   out[j, e] = the pairwise sum of partials [j*group .. j*group+group-1, e], for
//                reductions with more splits than one sum_splits takes.
// #include _strided
// #include _conv_epilogue

override MODE: u32 = 0u;
override TK: u32 = 16u;
override TM: u32 = 4u;     // rows per invocation: 4 (64-row tiles) or 1 (16-row tiles, for few output channels)
const TN: u32 = 4u;
override BM: u32 = 16u * TM;
const BN: u32 = 64u;

struct Params {
  in_size: vec4<u32>,   // D, H, W of the gathered input (X, or IN for the weight grad)
  out_size: vec4<u32>,  // D, H, W of the output (of G for the weight grad)
  ksize: vec4<u32>,
  stride: vec4<u32>,
  pad: vec4<u32>,       // leading padding per axis
  dil: vec4<u32>,
  groups: u32,
  batch: u32,
  M: u32,
  N: u32,
  K: u32,
  cin_g: u32,
  kvol: u32,
  ivol: u32,
  ovol: u32,
  phases: u32,          // MODE 3: stride_d*stride_h*stride_w; else 1
  splits: u32,          // K chunks (split K); 1: the kernels store results themselves
  k_chunk: u32,
  mtiles: u32,
  n0: u32,              // the slab's first column
  slab_n: u32,          // and its width
  z0: u32,              // added to workgroup_id.z (dispatches past the per-dimension limit)
  a_offset: u32,
  b_offset: u32,
  bias_offset: u32,
  has_bias: u32,
  has_residual: u32,
  prelu_per_channel: u32,
  prelu_offset: u32,
  store_pre: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_buf: array<f32>;
@group(0) @binding(2) var<storage, read> b_buf: array<f32>;

fn unravel3(i: u32, size: vec4<u32>) -> vec3<u32> {
  let t = i / size.z;
  return vec3<u32>(t / size.y, t % size.y, i % size.z);
}

fn flat3(p: vec3<u32>, size: vec4<u32>) -> u32 {
  return (p.x * size.y + p.y) * size.z + p.z;
}

// The reduction index k splits into an outer part u (input channel ci; batch b for the weight grad)
// and a 3d part e (kernel tap; output position for the weight grad). A `Tap` holds what element k
// contributes to A's and B's indices and to B's spatial position, independent of row m and column n;
// a `Col` holds column n's part, a row offset row m's part. So the inner loops need no divisions.
struct Tap {
  a: u32,          // added to the row offset to index A
  b: u32,          // added to the column offset to index B
  pos: vec3<i32>,  // modes 0, 2: added to the column's position; mode 1: subtracted from it
}

struct Col {
  off: u32,
  pos: vec3<i32>,
}

// MODE 3's phase (set at the start of each entry point): taps per axis, columns per axis, the
// first output of the phase, the input index of column 0 / tap 0, and the phase's N and K.
var<private> ph_r: vec3<u32>;
var<private> ph_taps: vec4<u32>;
var<private> ph_cols: vec4<u32>;
var<private> ph_first: vec3<u32>;
var<private> ph_base: vec3<i32>;

// Returns the phase's (N, K) computed from uniform values only (barrier loops depend on K).
fn set_phase(phase: u32) -> vec2<u32> {
  let s = params.stride.xyz;
  let r = unravel3(phase, params.stride);
  let k = params.ksize.xyz;
  let out = params.out_size.xyz;
  let first = (r + s - params.pad.xyz % s) % s;
  let taps = select(vec3<u32>(0u), (k - r + s - 1u) / s, k > r);
  let cols = select(vec3<u32>(0u), (out - first + s - 1u) / s, out > first);
  ph_r = r;
  ph_taps = vec4<u32>(taps, 1u);
  ph_first = first;
  ph_cols = vec4<u32>(cols, 1u);
  ph_base = vec3<i32>((first + params.pad.xyz - r) / s);
  return vec2<u32>(params.batch * cols.x * cols.y * cols.z, params.cin_g * taps.x * taps.y * taps.z);
}

fn tap_of(u: u32, e: vec3<u32>) -> Tap {
  switch MODE {
    case 0u: { return Tap(u * params.kvol + flat3(e, params.ksize), u * params.ivol, vec3<i32>(e * params.dil.xyz)); }
    case 1u: { return Tap(u * params.M * params.kvol + flat3(e, params.ksize), u * params.ivol, vec3<i32>(e * params.dil.xyz)); }
    case 3u: { return Tap(u * params.M * params.kvol + flat3(ph_r + e * params.stride.xyz, params.ksize), u * params.ivol, vec3<i32>(e)); }
    default: {
      return Tap(u * params.groups * params.M * params.ovol + flat3(e, params.out_size), u * params.groups * params.cin_g * params.ivol,
                 vec3<i32>(e * params.stride.xyz) - vec3<i32>(params.pad.xyz));
    }
  }
}

// The extent of the reduction's 3d part: the kernel, or the output for the weight grad.
fn tap_extent() -> vec4<u32> {
  if (MODE == 2u) { return params.out_size; }
  if (MODE == 3u) { return ph_taps; }
  return params.ksize;
}

fn tap_at(k: u32) -> Tap {
  let ext = tap_extent();
  let per = ext.x * ext.y * ext.z;
  return tap_of(k / per, unravel3(k % per, ext));
}

// Row m's part of A's index.
fn row_off(g: u32, m: u32) -> u32 {
  switch MODE {
    case 0u: { return params.a_offset + (g * params.M + m) * params.K; }
    case 1u, 3u: { return params.a_offset + g * params.cin_g * params.M * params.kvol + m * params.kvol; }
    default: { return params.a_offset + (g * params.M + m) * params.ovol; }
  }
}

// Column n's part of B's index and position.
fn col_of(g: u32, n: u32) -> Col {
  switch MODE {
    case 0u, 1u: {
      let b = n / params.ovol;
      let o3 = vec3<i32>(unravel3(n % params.ovol, params.out_size));
      let off = params.b_offset + (b * params.groups + g) * params.cin_g * params.ivol;
      if (MODE == 0u) { return Col(off, o3 * vec3<i32>(params.stride.xyz) - vec3<i32>(params.pad.xyz)); }
      return Col(off, o3 + vec3<i32>(params.pad.xyz));
    }
    case 3u: {
      let per = ph_cols.x * ph_cols.y * ph_cols.z;
      let b = n / per;
      let q = vec3<i32>(unravel3(n % per, ph_cols));
      return Col(params.b_offset + (b * params.groups + g) * params.cin_g * params.ivol, ph_base + q);
    }
    default: {
      let ci = n / params.kvol;
      let k3 = unravel3(n % params.kvol, params.ksize);
      return Col(params.b_offset + (g * params.cin_g + ci) * params.ivol, vec3<i32>(k3 * params.dil.xyz));
    }
  }
}

fn load_a(row: u32, t: Tap) -> f32 {
  return a_buf[row + t.a];
}

// B[k, n]: the input at the column's position plus the tap (modes 0, 2), or, for the transposed
// gather, at (position - tap) / stride where that division is exact; 0 outside the input.
fn load_b(c: Col, t: Tap) -> f32 {
  var q: vec3<i32>;
  if (MODE == 1u) {
    let d = c.pos - t.pos;
    if (any(d < vec3<i32>(0))) { return 0.0; }
    let s = vec3<i32>(params.stride.xyz);
    if (any(d % s != vec3<i32>(0))) { return 0.0; }
    q = d / s;
  } else if (MODE == 3u) {
    q = c.pos - t.pos;
  } else {
    q = c.pos + t.pos;
  }
  if (any(q < vec3<i32>(0)) || any(vec3<u32>(q) >= params.in_size.xyz)) { return 0.0; }
  return b_buf[c.off + t.b + flat3(vec3<u32>(q), params.in_size)];
}

// Writes a split's partial sum for (g, phase, m, n), or with one split the result.
fn store(g: u32, s: u32, ph: u32, m: u32, n: u32, acc: f32) {
  if (params.splits > 1u) {
    let slab = params.groups * params.phases * params.M * params.slab_n;
    out[s * slab + ((g * params.phases + ph) * params.M + m) * params.slab_n + n - params.n0] = acc;
    return;
  }
  store_out(g, m, n, acc);
}

// Writes one result: a weight-grad entry, or a conv output through the epilogue (MODE 3: of the
// phase set_phase chose).
fn store_out(g: u32, m: u32, n: u32, acc: f32) {
  if (MODE == 2u) {
    out[(g * params.M + m) * params.N + n] = acc;
    return;
  }
  let c = g * params.M + m;
  var b = n / params.ovol;
  var o = n % params.ovol;
  if (MODE == 3u) {
    let per = ph_cols.x * ph_cols.y * ph_cols.z;
    b = n / per;
    o = flat3(ph_first + unravel3(n % per, ph_cols) * params.stride.xyz, params.out_size);
  }
  finish((b * params.groups * params.M + c) * params.ovol + o, c, acc);
}

// The K range of split s, for a reduction of K steps.
fn k_range(s: u32, K: u32) -> vec2<u32> {
  let k0 = min(K, s * params.k_chunk);
  return vec2<u32>(k0, min(K, k0 + params.k_chunk));
}

// Workgroup z as (group, phase, split, row block) of `blocks` row blocks.
struct Zpos {
  g: u32,
  ph: u32,
  s: u32,
  mb: u32,
}

fn z_pos(wz: u32, blocks: u32) -> Zpos {
  let z = wz + params.z0;
  let zs = z / blocks;
  return Zpos(zs / (params.splits * params.phases), (zs / params.splits) % params.phases, zs % params.splits, z % blocks);
}

// One invocation per column n and MR consecutive rows (output channels): the chunk's reduction
// runs as one loop whose tap indices step like an odometer (no index division inside), and each B
// value loaded serves MR rows; every lane of a workgroup shares the rows, so their A reads are
// the same address.
override MR: u32 = 1u;

@compute @workgroup_size(64)
fn conv_naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nl = (wid.y * nwg.x + wid.x) * 64u + lid;
  let mblocks = (params.M + MR - 1u) / MR;
  let zp = z_pos(wid.z, mblocks);
  let g = zp.g;
  let m0 = zp.mb * MR;
  var N = params.N;
  var K = params.K;
  if (MODE == 3u) {
    let nk = set_phase(zp.ph);
    N = nk.x;
    K = nk.y;
  }
  let n = params.n0 + nl;
  if (nl >= params.slab_n || n >= N) { return; }
  let rows = min(MR, params.M - m0);
  let row = row_off(g, m0);
  let rstep = row_off(g, m0 + 1u) - row;
  let col = col_of(g, n);
  let ext = tap_extent();
  let kr = k_range(zp.s, K);
  // k = u * vol(ext) + flat3(e, ext), from the chunk's first k
  let per = max(1u, ext.x * ext.y * ext.z);
  var u = kr.x / per;
  var e = unravel3(kr.x % per, ext);
  var acc: array<f32, 16>; // MR <= 16 (override-sized arrays must be workgroup variables)
  for (var k = kr.x; k < kr.y; k++) {
    let t = tap_of(u, e);
    let bv = load_b(col, t);
    for (var i = 0u; i < MR; i++) {
      if (i < rows) { acc[i] = fma(load_a(row + i * rstep, t), bv, acc[i]); }
    }
    e.z += 1u;
    if (e.z == ext.z) {
      e.z = 0u;
      e.y += 1u;
      if (e.y == ext.y) {
        e.y = 0u;
        e.x += 1u;
        if (e.x == ext.x) {
          e.x = 0u;
          u += 1u;
        }
      }
    }
  }
  for (var i = 0u; i < rows; i++) { store(g, zp.s, zp.ph, m0 + i, n, acc[i]); }
}

var<workgroup> taps: array<Tap, TK>; // the current K slice's taps

// conv_tiled's state for the tile core's hooks: the invocation, the tile's first row and column,
// the slab's end, and the A row and B column this invocation stages at every step.
struct TileState {
  tid: u32,
  m0: u32,
  n0: u32,
  nend: u32,
  row: u32,
  col: Col,
}
var<private> ts: TileState;

fn gemm_load_a(mm: u32, k: u32, kk: u32) -> f32 {
  if (ts.m0 + mm >= params.M) { return 0.0; }
  return load_a(ts.row, taps[kk]);
}

fn gemm_load_b(nn: u32, k: u32, kk: u32) -> f32 {
  if (ts.n0 + nn >= ts.nend) { return 0.0; }
  return load_b(ts.col, taps[kk]);
}

// The taps of the slice at k0, one per invocation of the first TK.
fn gemm_prefetch(k0: u32) {
  if (ts.tid < TK) { taps[ts.tid] = tap_at(k0 + ts.tid); }
}

// #include _gemm_tile

@compute @workgroup_size(16, 16)
fn conv_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let zp = z_pos(wid.z, params.mtiles);
  let g = zp.g;
  let m0 = zp.mb * BM;
  let n0 = params.n0 + (wid.y * nwg.x + wid.x) * BN;
  var N = params.N;
  var K = params.K;
  if (MODE == 3u) {
    let nk = set_phase(zp.ph);
    N = nk.x;
    K = nk.y;
  }
  let kr = k_range(zp.s, K);
  let nend = min(N, params.n0 + params.slab_n); // the slab's columns
  // Workgroups past the last N tile (the x*y spread rounds up) still take part in the barriers.
  let tid = lid.y * 16u + lid.x;
  ts.tid = tid;
  ts.m0 = m0;
  ts.n0 = n0;
  ts.nend = nend;
  ts.row = row_off(g, min(m0 + tid % BM, params.M - 1u));
  ts.col = col_of(g, min(n0 + tid % BN, max(nend, 1u) - 1u));
  var acc: array<vec4<f32>, 4>; // [i] holds the TN = 4 columns lid.x + 16*j
  acc = gemm_tile(lid, kr.x, kr.y, acc);
  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid.y + 16u * i;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + lid.x + 16u * j;
      if (m < params.M && n < nend) { store(g, zp.s, zp.ph, m, n, acc[i][j]); }
    }
  }
}

@compute @workgroup_size(64)
fn conv_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * 64u + lid;   // over the slab's [groups, phases, M, slab_n]
  let elems = params.groups * params.phases * params.M * params.slab_n;
  if (e >= elems) { return; }
  let n = params.n0 + e % params.slab_n;
  let t = e / params.slab_n;
  let m = t % params.M;
  let ph = (t / params.M) % params.phases;
  let g = t / (params.M * params.phases);
  var N = params.N;
  if (MODE == 3u) { N = set_phase(ph).x; }
  if (n >= N) { return; }
  store_out(g, m, n, sum_splits(e, elems, params.splits));
}

struct FoldParams {
  elems: u32,   // partials per split
  splits: u32,
  group: u32,   // splits summed per output row (<= 4096)
}

@group(0) @binding(0) var<uniform> fold: FoldParams;

@compute @workgroup_size(64)
fn conv_fold(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 64u + lid;   // over [ceil(splits / group), elems]
  let e = i % fold.elems;
  let first = (i / fold.elems) * fold.group;
  if (first >= fold.splits) { return; }
  out[i] = sum_splits(first * fold.elems + e, fold.elems, min(fold.group, fold.splits - first));
}
