// Fused scaled dot-product attention, forward:
//   s[i, j] = scale * q[i] . k[j] + bias[i, j],   out[i] = sum_j softmax_j(s[i, :]) v[j],
//   lse[i] = log sum_j exp(s[i, j])  (saved for the backward, which recomputes s tile by tile).
// q [B, H, Lq, D], k and v [B, H, Lk, D] are strided views (strides for b, h, l, d in vec4s);
// out is contiguous [B, H, Lq, D]; stats is contiguous [B, H, Lq, 2] and gets lse in slot 0 (slot 1
// is the backward's delta). bias is the sum of two optional terms:
//   - mask[b, h, i, j], any strides (0 on broadcast dims): PyTorch's additive attn_mask;
//   - decomposed relative position (SAM): rel[bh, i, j / kw] + rel[bh, i, kh + j % kw] with
//     Lk = kh * kw and rel contiguous [B*H, Lq, kh + kw] (SAM's rel_h and rel_w side by side).
// One invocation per query row, 64 rows per workgroup; K/V tiles of TILE keys are staged in
// workgroup memory; online softmax with f32 running max, sum and accumulator. The Lq x Lk score
// matrix is never stored. Grid: [ceil(Lq / 64), H, B]. Head dim D <= 128, TILE * D <= 2048.
// HEAD_DIM and TILE (overrides) specialise a pipeline to one head dim and tile (loops with constant
// trip counts, for GPUs); left at 0 they come from the uniform (one pipeline for every D: CPU
// adapters, where compiling is the expensive part).

// #include _attention

const MAX_TILE: u32 = 64u;

@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

var<workgroup> k_tile: array<f32, 2048>; // [TILE][HEAD_DIM]
var<workgroup> v_tile: array<f32, 2048>;

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let T = tile_len();
  let b = wid.z;
  let h = wid.y;
  let i = wid.x * ROWS + lid;
  let valid = i < params.Lq;
  let qs = params.q_strides;
  let ks = params.k_strides;
  let vs = params.v_strides;
  let qb = params.q_offset + b * qs.x + h * qs.y + min(i, params.Lq - 1u) * qs.z;
  let kb = params.k_offset + b * ks.x + h * ks.y;
  let vb = params.v_offset + b * vs.x + h * vs.y;

  var qr: array<f32, MAX_D>;
  var acc: array<f32, MAX_D>;
  for (var d = 0u; d < D; d++) {
    qr[d] = q[qb + d * qs.w] * params.scale;
    acc[d] = 0.0;
  }
  var m = -3.4028234663852886e38;
  var l = 0.0;
  var s: array<f32, MAX_TILE>;

  for (var k0 = 0u; k0 < params.Lk; k0 += T) {
    let n = min(T, params.Lk - k0);
    for (var t = lid; t < n * D; t += ROWS) {
      let j = k0 + t / D;
      let d = t % D;
      k_tile[t] = k[kb + j * ks.z + d * ks.w];
      v_tile[t] = v[vb + j * vs.z + d * vs.w];
    }
    workgroupBarrier();
    if (valid) {
      var m_new = m;
      for (var j = 0u; j < n; j++) {
        var dot = 0.0;
        for (var d = 0u; d < D; d++) { dot = fma(qr[d], k_tile[j * D + d], dot); }
        let sj = dot + score_bias(b, h, i, k0 + j);
        s[j] = sj;
        m_new = max(m_new, sj);
      }
      let corr = exp(m - m_new);
      l *= corr;
      for (var d = 0u; d < D; d++) { acc[d] *= corr; }
      for (var j = 0u; j < n; j++) {
        let p = exp(s[j] - m_new);
        l += p;
        for (var d = 0u; d < D; d++) { acc[d] = fma(p, v_tile[j * D + d], acc[d]); }
      }
      m = m_new;
    }
    workgroupBarrier();
  }

  if (valid) {
    let row = (b * params.H + h) * params.Lq + i;
    let inv = 1.0 / l;
    for (var d = 0u; d < D; d++) { out[row * D + d] = acc[d] * inv; }
    stats[2u * row] = m + log(l);
  }
}
