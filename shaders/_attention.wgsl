// Shared by attention.wgsl and attention_backward.wgsl (included, not a kernel): the Params
// uniform, the q/k/v/mask/rel bindings, the head-dim and tile specialisation, vec4 row loads, and
// the additive score bias (mask plus SAM's decomposed relative position).
// Rows of head dim D are held as D4 = ceil(D / 4) vec4s, zero past D, so the loops over the head dim
// run D4 times. What an invocation iterates is bounded by the split plan of src/ops/attention.ts:
// Mesa's llvmpipe leaves all loops of an invocation, silently, once 65,535 loop passes have run in
// it (LP_MAX_TGSI_LOOP_ITERATIONS: one counter per batch of 8 invocations, shared by every loop of
// the shader), so no invocation may walk a whole row of Lk keys or Lq queries. The TS side counts
// each kernel's loop passes as written here (attentionLoopPasses: a loop entered for n passes as
// n + 1, inner loops multiplied out) and splits the keys (or queries) to stay within LOOP_BUDGET
// (16384); a change to a kernel's loops must change that count too.
// Masks without infinities (WGSL implementations may assume there are none): a mask value is
// clamped to MASK_FLOOR (-1e30), so a key masked with -inf (or anything at or below -1e30) gets
// weight exp(-1e30 + s - m) = 0 next to any unmasked key; a row whose running max stays below
// MASKED_ROW saw no unmasked key and its output is 0 with zero gradients (PyTorch's safe softmax,
// the math path of scaled_dot_product_attention since 2.5), with lse = F32_MAX so the backward's
// recomputed p = exp(s - lse) is 0.
// #include _float

const MASK_FLOOR: f32 = -1e30;
const MASKED_ROW: f32 = -5e29;

override HEAD_DIM: u32 = 0u;
override TILE: u32 = 0u;
const MAX_D4: u32 = 32u; // head dim <= 128
const ROWS: u32 = 64u;

struct Params {
  BH: u32,
  H: u32,
  Lq: u32,
  Lk: u32,
  has_mask: u32,
  q_strides: vec4<u32>,
  k_strides: vec4<u32>,
  v_strides: vec4<u32>,
  m_strides: vec4<u32>,
  q_offset: u32,
  k_offset: u32,
  v_offset: u32,
  m_offset: u32,
  rel_kh: u32,
  rel_kw: u32,
  rel_offset: u32,
  scale: f32,
  D: u32,
  tile: u32,
  // the split of the walked rows (keys in forward and backward_dq/dbias, queries in backward_dkdv):
  // `splits` ranges of `split_len` rows (a multiple of the tile), one per grid z slice of a batch
  splits: u32,
  split_len: u32,
  // elements per split of the summed partials (backward_sum_splits)
  n_elems: u32,
  // the backward's split partials in rounds (their [splits, n] buffer over the binding limit): this
  // launch runs splits split0 .. split0 + splits - 1 of the plan into partials indexed from 0, and
  // backward_sum_splits adds them to grad (accumulate 1) after the first round; 0 elsewhere
  split0: u32,
  accumulate: u32,
  // added to workgroup_id.x, the 64-row block (queries in forward and backward_dq/dbias, keys in
  // backward_dkdv): a launch over the dispatch work bound runs its blocks in several dispatches
  x0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> rel: array<f32>;

// Head dim and tile size: the override when the pipeline is specialised, else the uniform.
fn head_dim() -> u32 { return select(params.D, HEAD_DIM, HEAD_DIM != 0u); }
fn tile_len() -> u32 { return select(params.tile, TILE, TILE != 0u); }

// Elements d .. d + 3 of a row of q, k or v starting at `base` (element stride params.*_strides.w),
// zero past the head dim D. No loop: these run inside the counted loops.
fn q4(base: u32, d: u32, D: u32) -> vec4<f32> {
  let s = params.q_strides.w;
  let e = D - 1u;
  return vec4<f32>(
    select(0.0, q[base + min(d, e) * s], d < D),
    select(0.0, q[base + min(d + 1u, e) * s], d + 1u < D),
    select(0.0, q[base + min(d + 2u, e) * s], d + 2u < D),
    select(0.0, q[base + min(d + 3u, e) * s], d + 3u < D));
}
fn k4(base: u32, d: u32, D: u32) -> vec4<f32> {
  let s = params.k_strides.w;
  let e = D - 1u;
  return vec4<f32>(
    select(0.0, k[base + min(d, e) * s], d < D),
    select(0.0, k[base + min(d + 1u, e) * s], d + 1u < D),
    select(0.0, k[base + min(d + 2u, e) * s], d + 2u < D),
    select(0.0, k[base + min(d + 3u, e) * s], d + 3u < D));
}
fn v4(base: u32, d: u32, D: u32) -> vec4<f32> {
  let s = params.v_strides.w;
  let e = D - 1u;
  return vec4<f32>(
    select(0.0, v[base + min(d, e) * s], d < D),
    select(0.0, v[base + min(d + 1u, e) * s], d + 1u < D),
    select(0.0, v[base + min(d + 2u, e) * s], d + 2u < D),
    select(0.0, v[base + min(d + 3u, e) * s], d + 3u < D));
}
// The sum of a vec4's components (a dot product's four partial sums).
fn hsum(x: vec4<f32>) -> f32 { return (x.x + x.y) + (x.z + x.w); }

// The additive bias of score (i, j) for batch b, head h.
fn score_bias(b: u32, h: u32, i: u32, j: u32) -> f32 {
  var r = 0.0;
  if (params.has_mask != 0u) {
    let s = params.m_strides;
    r += max(mask[params.m_offset + b * s.x + h * s.y + i * s.z + j * s.w], MASK_FLOOR);
  }
  if (params.rel_kw != 0u) {
    let base = params.rel_offset + ((b * params.H + h) * params.Lq + i) * (params.rel_kh + params.rel_kw);
    r += rel[base + j / params.rel_kw] + rel[base + params.rel_kh + j % params.rel_kw];
  }
  return r;
}
