// Shared by attention.wgsl and attention_backward.wgsl (included, not a kernel): the Params
// uniform, the q/k/v/mask/rel bindings, the head-dim and tile specialisation, and the additive
// score bias (mask plus SAM's decomposed relative position).

override HEAD_DIM: u32 = 0u;
override TILE: u32 = 0u;
const MAX_D: u32 = 128u;
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

// The additive bias of score (i, j) for batch b, head h.
fn score_bias(b: u32, h: u32, i: u32, j: u32) -> f32 {
  var r = 0.0;
  if (params.has_mask != 0u) {
    let s = params.m_strides;
    r += mask[params.m_offset + b * s.x + h * s.y + i * s.z + j * s.w];
  }
  if (params.rel_kw != 0u) {
    let base = params.rel_offset + ((b * params.H + h) * params.Lq + i) * (params.rel_kh + params.rel_kw);
    r += rel[base + j / params.rel_kw] + rel[base + params.rel_kh + j % params.rel_kw];
  }
  return r;
}
