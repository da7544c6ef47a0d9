// Normalisation over rows: batch norm, group norm, layer norm, LayerNorm2d and weight
// standardisation are one kernel whose rows and affine channels are described by index maps.
// Element e of row r sits at  x_offset + (r / R1)*sr0 + (r % R1)*sr1 + (e / E1)*se0 + (e % E1)*se1
// and uses affine channel     (r % R1)*ch_r + (e / E1)*ch_e0 + (e % E1)*ch_e1.
//   y = (x - mean_r) * rstd_r * weight[ch] + bias[ch],  rstd_r = 1 / sqrt(var_r + eps),
// with the biased variance in f32: two passes (mean, then squared deviations) in the serial kernel,
// one pass of shifted sums in the workgroup and chunk kernels: with k a value of the row (its first
// element), mean = k + S1 / n and var = (S2 - S1^2 / n) / n for S1 = sum(x - k), S2 = sum((x - k)^2);
// the shift keeps the cancellation small when the mean is far from 0. One workgroup reduction (and one
// read of the row) instead of two: on Mesa's llvmpipe through Dawn's OpenGL backend, a second
// reduction whose input used the first one's result came out wrong unless another barrier followed
// the first (Mesa 22.3.6; SwiftShader was right).
// out and dx are fresh dense tensors (offset 0); x and dy carry their own offsets.
// stats[r] = mean_r and stats[n_rows + r] = rstd_r are written for the backward pass.
// MODE 0: batch statistics; with update_running, running_mean/var[r] (rows are channels, batch
//         norm) move by momentum toward the mean and the unbiased variance var * n / (n - 1).
// MODE 1: given statistics: mean and var read from running_mean/var[r] (batch norm in eval).
// Backward, with g = dy * weight[ch] and xhat = (x - mean) * rstd, per row of n elements:
//   MODE 0: dx = rstd * (g - mean(g) - xhat * mean(g * xhat));   MODE 1: dx = rstd * g.
// *_serial: one invocation per row (short rows; on CPU adapters, many rows up to 5460 elements);
// *_workgroup: 64 invocations per row with reductions in workgroup memory (long rows);
// norm_chunk_*: rows split over many workgroups (few, very long rows), see below.
// Bound: Mesa's llvmpipe (gallivm; Mesa 22.3.6 through Dawn's OpenGL backend) counts the loop passes
// of an invocation (one counter of 65535 per batch of 8 invocations, shared by every loop, inner
// loops in full) and silently leaves every loop once it runs out: one workgroup over a row of 2.2M
// (two loops of 34k passes) normalised only part of it. The host (src/ops/norm.ts) keeps rows of
// the serial kernel within (LOOP_BUDGET - 3) / 3 (its forward's three loops over the row), rows of
// the workgroup kernels and chunks under 64 * 4096 (4096 passes per loop), so no invocation passes
// LOOP_BUDGET (16384).

override MODE: u32 = 0u;

struct Params {
  n_rows: u32,
  row_len: u32,
  R1: u32,
  sr0: u32,
  sr1: u32,
  E1: u32,
  se0: u32,
  se1: u32,
  ch_r: u32,
  ch_e0: u32,
  ch_e1: u32,
  x_offset: u32,
  dy_offset: u32,   // dy's offset minus x's (backward; dy has x's layout)
  has_weight: u32,
  has_bias: u32,
  update_running: u32,
  eps: f32,
  momentum: f32,
  chunk: u32,    // elements per chunk (norm_chunk_* entries)
  chunks: u32,   // chunks per row
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;

// Backward bindings (entries norm_backward_*).
@group(0) @binding(8) var<storage, read> dy: array<f32>;
@group(0) @binding(9) var<storage, read> saved: array<f32>;
@group(0) @binding(10) var<storage, read_write> dx: array<f32>;

// Row r's first element and affine channel; an element's place and channel are those plus its
// offset within the row (el, ch), so the loops over a row add without dividing by R1.
struct RowAt {
  x: u32,
  c: u32,
}

fn row_at(r: u32) -> RowAt {
  return RowAt(params.x_offset + (r / params.R1) * params.sr0 + (r % params.R1) * params.sr1, (r % params.R1) * params.ch_r);
}

// ELEMS specialises the element map where one of its two levels is trivial, so the element loops
// carry no integer division (a division per lane is the slowest operation on CPU adapters):
// 1: E1 == row_len (e / E1 = 0: layer norm over the last dims, weight standardisation);
// 2: E1 == 1 (e % E1 = 0: LayerNorm2d over the channels); 0: the general map (batch, group norm).
override ELEMS: u32 = 0u;

fn el(b: RowAt, e: u32) -> u32 {
  if (ELEMS == 1u) { return b.x + e * params.se1; }
  if (ELEMS == 2u) { return b.x + e * params.se0; }
  return b.x + (e / params.E1) * params.se0 + (e % params.E1) * params.se1;
}

fn ch(b: RowAt, e: u32) -> u32 {
  if (ELEMS == 1u) { return b.c + e * params.ch_e1; }
  if (ELEMS == 2u) { return b.c + e * params.ch_e0; }
  return b.c + (e / params.E1) * params.ch_e0 + (e % params.E1) * params.ch_e1;
}

fn scale_of(c: u32) -> f32 {
  return select(1.0, weight[c], params.has_weight != 0u);
}

fn shift_of(c: u32) -> f32 {
  return select(0.0, bias[c], params.has_bias != 0u);
}

// Stores the statistics of row r (and moves the running ones); returns (mean, rstd).
fn finish_stats(r: u32, mean: f32, m2: f32) -> vec2<f32> {
  let n = f32(params.row_len);
  var mu = mean;
  var v = m2 / n;
  if (MODE == 1u) {
    mu = running_mean[r];
    v = running_var[r];
  } else if (params.update_running != 0u) {
    let m = params.momentum;
    running_mean[r] = (1.0 - m) * running_mean[r] + m * mean;
    running_var[r] = (1.0 - m) * running_var[r] + m * m2 / max(n - 1.0, 1.0);
  }
  let rstd = 1.0 / sqrt(v + params.eps);
  stats[r] = mu;
  stats[params.n_rows + r] = rstd;
  return vec2<f32>(mu, rstd);
}

@compute @workgroup_size(64)
fn norm_forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (r >= params.n_rows) { return; }
  let rb = row_at(r);
  let n = params.row_len;
  var s = 0.0;
  for (var e = 0u; e < n; e++) { s += x[el(rb, e)]; }
  let mean = s / f32(n);
  var m2 = 0.0;
  for (var e = 0u; e < n; e++) {
    let d = x[el(rb, e)] - mean;
    m2 += d * d;
  }
  let st = finish_stats(r, mean, m2);
  for (var e = 0u; e < n; e++) {
    let i = el(rb, e);
    let c = ch(rb, e);
    out[i - params.x_offset] = (x[i] - st.x) * st.y * scale_of(c) + shift_of(c);
  }
}

var<workgroup> red: array<vec2<f32>, 64>;

// Sums v over the workgroup (every invocation gets the total).
fn wg_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// (mean, M2) of n values from their shifted sums s = (S1, S2) about k: mean = k + S1 / n,
// M2 = S2 - S1^2 / n (clamped at 0 against rounding).
fn shifted_moments(k: f32, s: vec2<f32>, n: f32) -> vec2<f32> {
  return vec2<f32>(k + s.x / n, max(s.y - s.x * s.x / n, 0.0));
}

// (mean, M2) of elements [e0, e1) of the row at rb, shifted by k, with the sums spread over the workgroup.
fn wg_moments(rb: RowAt, e0: u32, e1: u32, k: f32, lid: u32) -> vec2<f32> {
  var acc = vec2<f32>(0.0);
  for (var e = e0 + lid; e < e1; e += 64u) {
    let d = x[el(rb, e)] - k;
    acc += vec2<f32>(d, d * d);
  }
  return shifted_moments(k, wg_sum(lid, acc), f32(e1 - e0));
}

@compute @workgroup_size(64)
fn norm_forward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  let valid = r < params.n_rows;
  let n = select(0u, params.row_len, valid);
  let rb = row_at(min(r, params.n_rows - 1u));
  let k = select(0.0, x[el(rb, 0u)], valid);
  let mm = wg_moments(rb, 0u, n, k, lid); // every invocation takes part in the reduction
  if (!valid) { return; }
  var st: vec2<f32>;
  if (lid == 0u) { st = finish_stats(r, mm.x, mm.y); }
  // Every invocation derives the same statistics (finish_stats has side effects only for lid 0).
  if (MODE == 1u) {
    st = vec2<f32>(running_mean[r], 1.0 / sqrt(running_var[r] + params.eps));
  } else {
    st = vec2<f32>(mm.x, 1.0 / sqrt(mm.y / f32(params.row_len) + params.eps));
  }
  for (var e = lid; e < n; e += 64u) {
    let i = el(rb, e);
    let c = ch(rb, e);
    out[i - params.x_offset] = (x[i] - st.x) * st.y * scale_of(c) + shift_of(c);
  }
}

fn saved_stats(r: u32) -> vec2<f32> {
  return vec2<f32>(saved[r], saved[params.n_rows + r]);
}

@compute @workgroup_size(64)
fn norm_backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (r >= params.n_rows) { return; }
  let rb = row_at(r);
  let n = params.row_len;
  let st = saved_stats(r);
  var sg = 0.0;
  var sgx = 0.0;
  if (MODE == 0u) {
    for (var e = 0u; e < n; e++) {
      let i = el(rb, e);
      let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
      sg += g;
      sgx += g * (x[i] - st.x) * st.y;
    }
  }
  let mg = sg / f32(n);
  let mgx = sgx / f32(n);
  for (var e = 0u; e < n; e++) {
    let i = el(rb, e);
    let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
    let xhat = (x[i] - st.x) * st.y;
    dx[i - params.x_offset] = st.y * (g - mg - xhat * mgx);
  }
}

@compute @workgroup_size(64)
fn norm_backward_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  let valid = r < params.n_rows;
  let n = select(0u, params.row_len, valid);
  let st = select(vec2<f32>(0.0), saved_stats(min(r, params.n_rows - 1u)), valid);
  let rb = row_at(min(r, params.n_rows - 1u));
  var acc = vec2<f32>(0.0);
  if (MODE == 0u) {
    for (var e = lid; e < n; e += 64u) {
      let i = el(rb, e);
      let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
      acc += vec2<f32>(g, g * (x[i] - st.x) * st.y);
    }
  }
  let tot = wg_sum(lid, acc) / f32(params.row_len);
  for (var e = lid; e < n; e += 64u) {
    let i = el(rb, e);
    let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
    let xhat = (x[i] - st.x) * st.y;
    dx[i - params.x_offset] = st.y * (g - tot.x - xhat * tot.y);
  }
}

// ---- long rows split into chunks (few rows, e.g. batch norm over a volume) ----
// Each workgroup (row r, chunk p of `chunk` elements) first writes the chunk's count, mean and sum
// of squared deviations (shifted by the chunk's first element); the apply pass merges a row's chunk
// statistics (Chan's parallel update, shifted by the first chunk's mean), chunk 0 stores them (and
// moves the running statistics), and every workgroup normalises its chunk. The backward splits its two row sums the same way.

@group(0) @binding(11) var<storage, read_write> partial: array<f32>;

fn chunk_range(p: u32) -> vec2<u32> {
  let e0 = p * params.chunk;
  return vec2<u32>(e0, min(params.row_len, e0 + params.chunk));
}

@compute @workgroup_size(64)
fn norm_chunk_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y;
  let p = wid.x;
  let cr = chunk_range(p);
  let rb = row_at(r);
  let mm = wg_moments(rb, cr.x, cr.y, x[el(rb, cr.x)], lid);
  if (lid == 0u) {
    let o = (r * params.chunks + p) * 3u;
    partial[o] = f32(cr.y - cr.x);
    partial[o + 1u] = mm.x;
    partial[o + 2u] = mm.y;
  }
}

@compute @workgroup_size(64)
fn norm_chunk_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y;
  let p = wid.x;
  var st: vec2<f32>;
  if (MODE == 1u) {
    st = vec2<f32>(running_mean[r], 1.0 / sqrt(running_var[r] + params.eps));
    if (p == 0u && lid == 0u) { stats[r] = st.x; stats[params.n_rows + r] = st.y; }
  } else {
    // Shifted by k, the row's first chunk mean: S1 = sum(n_q (mean_q - k)) and
    // S2 = sum(M2_q + n_q (mean_q - k)^2), one workgroup sum, each invocation taking every 64th chunk.
    let k = partial[r * params.chunks * 3u + 1u];
    var acc = vec2<f32>(0.0);
    for (var q = lid; q < params.chunks; q += 64u) {
      let o = (r * params.chunks + q) * 3u;
      let d = partial[o + 1u] - k;
      acc += vec2<f32>(partial[o] * d, partial[o + 2u] + partial[o] * d * d);
    }
    let n = f32(params.row_len);
    let mm = shifted_moments(k, wg_sum(lid, acc), n);
    st = vec2<f32>(mm.x, 1.0 / sqrt(mm.y / n + params.eps));
    if (p == 0u && lid == 0u) { st = finish_stats(r, mm.x, mm.y); }
  }
  let cr = chunk_range(p);
  let rb = row_at(r);
  for (var e = cr.x + lid; e < cr.y; e += 64u) {
    let i = el(rb, e);
    let c = ch(rb, e);
    out[i - params.x_offset] = (x[i] - st.x) * st.y * scale_of(c) + shift_of(c);
  }
}

@compute @workgroup_size(64)
fn norm_chunk_backward_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y;
  let p = wid.x;
  let st = saved_stats(r);
  let cr = chunk_range(p);
  let rb = row_at(r);
  var acc = vec2<f32>(0.0);
  for (var e = cr.x + lid; e < cr.y; e += 64u) {
    let i = el(rb, e);
    let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
    acc += vec2<f32>(g, g * (x[i] - st.x) * st.y);
  }
  let tot = wg_sum(lid, acc);
  if (lid == 0u) {
    let o = (r * params.chunks + p) * 2u;
    partial[o] = tot.x;
    partial[o + 1u] = tot.y;
  }
}

@compute @workgroup_size(64)
fn norm_chunk_backward_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y;
  let p = wid.x;
  let st = saved_stats(r);
  var tot = vec2<f32>(0.0);
  if (MODE == 0u) {
    var acc = vec2<f32>(0.0);
    for (var q = lid; q < params.chunks; q += 64u) {
      let o = (r * params.chunks + q) * 2u;
      acc += vec2<f32>(partial[o], partial[o + 1u]);
    }
    tot = wg_sum(lid, acc) / f32(params.row_len);
  }
  let cr = chunk_range(p);
  let rb = row_at(r);
  for (var e = cr.x + lid; e < cr.y; e += 64u) {
    let i = el(rb, e);
    let g = dy[i + params.dy_offset - params.x_offset] * scale_of(ch(rb, e));
    let xhat = (x[i] - st.x) * st.y;
    dx[i - params.x_offset] = st.y * (g - tot.x - xhat * tot.y);
  }
}
