// Fused scaled dot-product attention, forward:
//   s[i, j] = scale * q[i] . k[j] + bias[i, j],   out[i] = sum_j softmax_j(s[i, :]) v[j],
//   lse[i] = log sum_j exp(s[i, j])  (saved for the backward, which recomputes s tile by tile).
// q [B, H, Lq, D], k and v [B, H, Lk, D] are strided views (strides for b, h, l, d in vec4s);
// out is contiguous [B, H, Lq, D]; stats is contiguous [B, H, Lq, 2] and gets lse in slot 0 (slot 1
// is the backward's delta). bias is the sum of two optional terms:
//   - mask[b, h, i, j], any strides (0 on broadcast dims): PyTorch's additive attn_mask;
//   - decomposed relative position (SAM): rel[bh, i, j / kw] + rel[bh, i, kh + j % kw] with
//     Lk = kh * kw and rel contiguous [B*H, Lq, kh + kw] (SAM's rel_h and rel_w side by side).
// The keys are split into `splits` ranges of `split_len` keys (flash-decoding; the plan in
// src/ops/attention.ts bounds each invocation's loop iterations, see _attention.wgsl). Entry points,
// in launch order:
//   forward:       one invocation per (query row, key split), 64 rows per workgroup; K/V tiles of
//                  TILE keys staged in workgroup memory; online softmax with f32 running max m,
//                  sum l and accumulator. Grid [ceil(Lq / 64), H, B * splits] (z = b * splits +
//                  split). With one split it writes out and lse directly. With more, `out` and
//                  `stats` are the split partials: out [splits, B*H*Lq, D] gets the unnormalised
//                  accumulator sum_j exp(s[i, j] - m) v[j] of the split's keys and stats
//                  [splits, B*H*Lq, 2] gets (m, l).
//   forward_merge: only with splits > 1: combines the partials (part, part_stats) in split order
//                  with log-sum-exp weights, M = max_s m_s, out[i] = sum_s exp(m_s - M) acc_s /
//                  sum_s exp(m_s - M) l_s, lse = M + log(sum_s exp(m_s - M) l_s); one invocation
//                  per output element (1D grid of 64-element workgroups over B*H*Lq*D).
// The Lq x Lk score matrix is never stored; the partials are O(splits * Lq * D). Head dim D <= 128,
// TILE * ceil(D / 4) <= 512. HEAD_DIM and TILE (overrides) specialise a pipeline to one head dim and
// tile (loops with constant trip counts, for GPUs); left at 0 they come from the uniform (one
// pipeline for every D: CPU adapters, where compiling is the expensive part).

// #include _attention

const MAX_TILE: u32 = 64u;

@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
@group(0) @binding(8) var<storage, read> part: array<f32>;
@group(0) @binding(9) var<storage, read> part_stats: array<f32>;

var<workgroup> k_tile: array<vec4<f32>, 512>; // [TILE][D4]
var<workgroup> v_tile: array<vec4<f32>, 512>;

// out[base + d .. base + d + 3] = x, the components before D.
fn store4(base: u32, d: u32, D: u32, x: vec4<f32>) {
  out[base + d] = x.x;
  if (d + 1u < D) { out[base + d + 1u] = x.y; }
  if (d + 2u < D) { out[base + d + 2u] = x.z; }
  if (d + 3u < D) { out[base + d + 3u] = x.w; }
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let D4 = (D + 3u) / 4u;
  let T = tile_len();
  let S = params.splits;
  let b = wid.z / S;
  let split = wid.z % S;
  let h = wid.y;
  let i = (wid.x + params.x0) * ROWS + lid;
  let valid = i < params.Lq;
  let qs = params.q_strides;
  let ks = params.k_strides;
  let vs = params.v_strides;
  let qb = params.q_offset + b * qs.x + h * qs.y + min(i, params.Lq - 1u) * qs.z;
  let kb = params.k_offset + b * ks.x + h * ks.y;
  let vb = params.v_offset + b * vs.x + h * vs.y;

  var qr: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  for (var d4 = 0u; d4 < D4; d4++) {
    qr[d4] = q4(qb, 4u * d4, D) * params.scale;
    acc[d4] = vec4<f32>(0.0);
  }
  var m = -F32_MAX;
  var l = 0.0;
  var s: array<f32, MAX_TILE>;

  let k_begin = split * params.split_len;
  let k_end = min(params.Lk, k_begin + params.split_len);
  for (var k0 = k_begin; k0 < k_end; k0 += T) {
    let n = min(T, k_end - k0);
    for (var t = lid; t < n * D4; t += ROWS) {
      let j = k0 + t / D4;
      let d = 4u * (t % D4);
      k_tile[t] = k4(kb + j * ks.z, d, D);
      v_tile[t] = v4(vb + j * vs.z, d, D);
    }
    workgroupBarrier();
    if (valid) {
      var m_new = m;
      for (var j = 0u; j < n; j++) {
        var dot4 = vec4<f32>(0.0);
        for (var d4 = 0u; d4 < D4; d4++) { dot4 = fma(qr[d4], k_tile[j * D4 + d4], dot4); }
        let sj = hsum(dot4) + score_bias(b, h, i, k0 + j);
        s[j] = sj;
        m_new = max(m_new, sj);
      }
      let corr = exp(m - m_new);
      l *= corr;
      for (var d4 = 0u; d4 < D4; d4++) { acc[d4] *= corr; }
      for (var j = 0u; j < n; j++) {
        let p = exp(s[j] - m_new);
        l += p;
        for (var d4 = 0u; d4 < D4; d4++) { acc[d4] = fma(vec4<f32>(p), v_tile[j * D4 + d4], acc[d4]); }
      }
      m = m_new;
    }
    workgroupBarrier();
  }

  if (valid) {
    let row = (b * params.H + h) * params.Lq + i;
    let at = split * params.BH * params.Lq + row; // = row with one split
    let masked = m < MASKED_ROW; // no unmasked key (with splits, forward_merge decides)
    let inv = select(select(1.0, 1.0 / l, S == 1u), 0.0, masked && S == 1u);
    for (var d4 = 0u; d4 < D4; d4++) { store4(at * D, 4u * d4, D, acc[d4] * inv); }
    if (S == 1u) {
      stats[2u * row] = select(m + log(l), F32_MAX, masked);
    } else {
      stats[2u * at] = m;
      stats[2u * at + 1u] = l;
    }
  }
}

@compute @workgroup_size(64)
fn forward_merge(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let R = params.BH * params.Lq;
  let S = params.splits;
  let e = (wid.y * nwg.x + wid.x) * ROWS + lid;
  if (e >= R * D) { return; }
  let row = e / D;
  let d = e % D;
  var mx = -F32_MAX;
  for (var sp = 0u; sp < S; sp++) { mx = max(mx, part_stats[2u * (sp * R + row)]); }
  if (mx < MASKED_ROW) { // every key of the row masked
    out[e] = 0.0;
    if (d == 0u) { stats[2u * row] = F32_MAX; }
    return;
  }
  var l = 0.0;
  var a = 0.0;
  for (var sp = 0u; sp < S; sp++) {
    let at = sp * R + row;
    let w = exp(part_stats[2u * at] - mx);
    l = fma(w, part_stats[2u * at + 1u], l);
    a = fma(w, part[at * D + d], a);
  }
  out[e] = a / l;
  if (d == 0u) { stats[2u * row] = mx + log(l); }
}
