// Fused scaled dot-product attention, backward. With s = scale * q k^T + bias, p = exp(s - lse)
// (lse saved by the forward, so p is recomputed tile by tile and never stored), o = p v, dO given:
//   delta[i] = sum_d dO[i, d] o[i, d]  (= sum_j p[i, j] dp[i, j])
//   dp[i, j] = dO[i] . v[j],   ds[i, j] = p[i, j] (dp[i, j] - delta[i])
//   dq[i] = scale * sum_j ds[i, j] k[j],  dk[j] = scale * sum_i ds[i, j] q[i],  dv[j] = sum_i p[i, j] dO[i]
//   d(mask)[i, j] = ds[i, j]  (in full [B, H, Lq, Lk]; the caller reduces it to the mask's shape)
//   d(rel)[i, ky] = sum_kx ds[i, ky * kw + kx],  d(rel)[i, kh + kx] = sum_ky ds[i, ky * kw + kx].
// Layouts, HEAD_DIM and TILE as in attention.wgsl; dO and o are contiguous [B, H, Lq, D]; stats [B, H, Lq, 2] holds
// (lse, delta). The walked rows are split as in the forward (`splits` ranges of `split_len` rows,
// grid z = b * splits + split; see _attention.wgsl for why): keys for backward_dq and
// backward_dbias, queries for backward_dkdv. A split's sums go to its own slice of `grad`,
// [splits, <gradient>], which backward_sum_splits adds up; with one split `grad` is the gradient.
// Entry points, in launch order (each binds at most 8 storage buffers):
//   backward_delta:      delta into stats slot 1; one invocation per query row.
//   backward_dq:         dq, [splits, B, H, Lq, D]; one invocation per (query row, key split), K/V
//                        tiles in workgroup memory. Grid [ceil(Lq/64), H, B * splits].
//   backward_dbias:      BIAS_GRAD 0: d(mask) in full (each split writes its own keys' columns, no
//                        sum needed), 1: d(rel), [splits, B, H, Lq, kh + kw]; same structure as
//                        backward_dq, run only when the bias needs a gradient.
//   backward_dkdv:       dk and dv into [splits, dk | dv] (each [B, H, Lk, D]); one invocation per
//                        (key row, query split), tiles of scale * q, dO and stats in workgroup memory
//                        (TILE * ceil(D / 4) <= 256). Grid [ceil(Lk/64), H, B * splits].
//   backward_sum_splits: after dq, d(rel) or dkdv when split: grad[e] = sum_s part[s * n_elems + e]
//                        in split order; one invocation per element (1D grid of 64-element workgroups).
// Partials over the binding limit (SAM's 4096-token dk/dv at 12 heads: 10 splits of 25 MB) run in
// rounds of splits (params.split0: the round's first split), each summed into grad in turn.

// #include _attention

override BIAS_GRAD: u32 = 0u;

@group(0) @binding(6) var<storage, read> d_o: array<f32>;
@group(0) @binding(7) var<storage, read> o: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad: array<f32>; // dq, d(mask), d(rel) or dkv (or their split partials)
@group(0) @binding(10) var<storage, read> part: array<f32>; // split partials to sum

// delta[row] = dO[row] . o[row], for the B*H*Lq rows (1D grid of 64-row workgroups).
@compute @workgroup_size(64)
fn backward_delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let row = (wid.y * nwg.x + wid.x) * ROWS + lid;
  if (row >= params.BH * params.Lq) { return; }
  var acc = 0.0;
  for (var d = 0u; d < D; d++) { acc = fma(d_o[row * D + d], o[row * D + d], acc); }
  stats[2u * row + 1u] = acc;
}

// dO[row, d .. d + 3], zero past D.
fn do4(row: u32, d: u32, D: u32) -> vec4<f32> {
  let base = row * D;
  let e = D - 1u;
  return vec4<f32>(
    select(0.0, d_o[base + min(d, e)], d < D),
    select(0.0, d_o[base + min(d + 1u, e)], d + 1u < D),
    select(0.0, d_o[base + min(d + 2u, e)], d + 2u < D),
    select(0.0, d_o[base + min(d + 3u, e)], d + 3u < D));
}

// grad[base + d .. base + d + 3] = x, the components before D.
fn store4(base: u32, d: u32, D: u32, x: vec4<f32>) {
  grad[base + d] = x.x;
  if (d + 1u < D) { grad[base + d + 1u] = x.y; }
  if (d + 2u < D) { grad[base + d + 2u] = x.z; }
  if (d + 3u < D) { grad[base + d + 3u] = x.w; }
}

var<workgroup> k_tile: array<vec4<f32>, 512>; // [T][D4] keys and values
var<workgroup> v_tile: array<vec4<f32>, 512>;

// Shared by backward_dq and backward_dbias: walks the keys of its split for one query row in tiles,
// calling the ds consumer selected by `what` (0: dq accumulator, 1: bias gradient).
fn query_rows(wid: vec3<u32>, lid: u32, what: u32) {
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
  let ic = min(i, params.Lq - 1u);
  let qb = params.q_offset + b * qs.x + h * qs.y + ic * qs.z;
  let kb = params.k_offset + b * ks.x + h * ks.y;
  let vb = params.v_offset + b * vs.x + h * vs.y;
  let row = (b * params.H + h) * params.Lq + ic;
  let at = split * params.BH * params.Lq + row; // this split's row of the partials
  let kh = params.rel_kh;
  let kw = params.rel_kw;
  let rel_row = at * (kh + kw);

  var qr: array<vec4<f32>, MAX_D4>;
  var gr: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  for (var d4 = 0u; d4 < D4; d4++) {
    qr[d4] = q4(qb, 4u * d4, D) * params.scale;
    gr[d4] = do4(row, 4u * d4, D);
    acc[d4] = vec4<f32>(0.0);
  }
  let li = stats[2u * row];
  let dl = stats[2u * row + 1u];
  if (valid && what == 1u && BIAS_GRAD == 1u) {
    for (var t = 0u; t < kh + kw; t++) { grad[rel_row + t] = 0.0; }
  }

  let k_begin = (params.split0 + split) * params.split_len;
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
      for (var jj = 0u; jj < n; jj++) {
        let j = k0 + jj;
        var sd4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var d4 = 0u; d4 < D4; d4++) {
          sd4 = fma(qr[d4], k_tile[jj * D4 + d4], sd4);
          dp4 = fma(gr[d4], v_tile[jj * D4 + d4], dp4);
        }
        let p = exp(hsum(sd4) + score_bias(b, h, i, j) - li);
        let ds = p * (hsum(dp4) - dl);
        if (what == 0u) {
          for (var d4 = 0u; d4 < D4; d4++) { acc[d4] = fma(vec4<f32>(ds), k_tile[jj * D4 + d4], acc[d4]); }
        } else if (BIAS_GRAD == 0u) {
          grad[row * params.Lk + j] = ds;
        } else {
          grad[rel_row + j / kw] += ds;
          grad[rel_row + kh + j % kw] += ds;
        }
      }
    }
    workgroupBarrier();
  }
  if (valid && what == 0u) {
    for (var d4 = 0u; d4 < D4; d4++) { store4(at * D, 4u * d4, D, acc[d4] * params.scale); }
  }
}

@compute @workgroup_size(64)
fn backward_dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  query_rows(wid, lid, 0u);
}

@compute @workgroup_size(64)
fn backward_dbias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  query_rows(wid, lid, 1u);
}

var<workgroup> q_tile: array<vec4<f32>, 256>; // [T][D4] scale * q, and dO
var<workgroup> g_tile: array<vec4<f32>, 256>;
var<workgroup> lse_tile: array<f32, 64>;
var<workgroup> delta_tile: array<f32, 64>;

@compute @workgroup_size(64)
fn backward_dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let D4 = (D + 3u) / 4u;
  let T = tile_len();
  let S = params.splits;
  let b = wid.z / S;
  let split = wid.z % S;
  let h = wid.y;
  let j = (wid.x + params.x0) * ROWS + lid;
  let valid = j < params.Lk;
  let qs = params.q_strides;
  let ks = params.k_strides;
  let vs = params.v_strides;
  let jc = min(j, params.Lk - 1u);
  let kb = params.k_offset + b * ks.x + h * ks.y + jc * ks.z;
  let vb = params.v_offset + b * vs.x + h * vs.y + jc * vs.z;
  let qb = params.q_offset + b * qs.x + h * qs.y;
  let bh = b * params.H + h;

  var kr: array<vec4<f32>, MAX_D4>;
  var vr: array<vec4<f32>, MAX_D4>;
  var dkr: array<vec4<f32>, MAX_D4>;
  var dvr: array<vec4<f32>, MAX_D4>;
  for (var d4 = 0u; d4 < D4; d4++) {
    kr[d4] = k4(kb, 4u * d4, D);
    vr[d4] = v4(vb, 4u * d4, D);
    dkr[d4] = vec4<f32>(0.0);
    dvr[d4] = vec4<f32>(0.0);
  }

  let i_begin = (params.split0 + split) * params.split_len;
  let i_end = min(params.Lq, i_begin + params.split_len);
  for (var i0 = i_begin; i0 < i_end; i0 += T) {
    let n = min(T, i_end - i0);
    for (var t = lid; t < n * D4; t += ROWS) {
      let i = i0 + t / D4;
      let d = 4u * (t % D4);
      q_tile[t] = q4(qb + i * qs.z, d, D) * params.scale;
      g_tile[t] = do4(bh * params.Lq + i, d, D);
    }
    if (lid < n) {
      lse_tile[lid] = stats[2u * (bh * params.Lq + i0 + lid)];
      delta_tile[lid] = stats[2u * (bh * params.Lq + i0 + lid) + 1u];
    }
    workgroupBarrier();
    if (valid) {
      for (var ii = 0u; ii < n; ii++) {
        var sd4 = vec4<f32>(0.0);
        var dp4 = vec4<f32>(0.0);
        for (var d4 = 0u; d4 < D4; d4++) {
          sd4 = fma(q_tile[ii * D4 + d4], kr[d4], sd4);
          dp4 = fma(g_tile[ii * D4 + d4], vr[d4], dp4);
        }
        let p = exp(hsum(sd4) + score_bias(b, h, i0 + ii, j) - lse_tile[ii]);
        let ds = p * (hsum(dp4) - delta_tile[ii]);
        for (var d4 = 0u; d4 < D4; d4++) {
          dvr[d4] = fma(vec4<f32>(p), g_tile[ii * D4 + d4], dvr[d4]);
          dkr[d4] = fma(vec4<f32>(ds), q_tile[ii * D4 + d4], dkr[d4]);
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    // q_tile holds scale * q, so dk already carries the scale.
    let half = params.BH * params.Lk * D;
    let r = split * 2u * half + (bh * params.Lk + j) * D;
    for (var d4 = 0u; d4 < D4; d4++) {
      store4(r, 4u * d4, D, dkr[d4]);
      store4(half + r, 4u * d4, D, dvr[d4]);
    }
  }
}

@compute @workgroup_size(64)
fn backward_sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * ROWS + lid;
  let N = params.n_elems;
  if (e >= N) { return; }
  var acc = 0.0;
  for (var sp = 0u; sp < params.splits; sp++) { acc += part[sp * N + e]; }
  grad[e] = select(acc, grad[e] + acc, params.accumulate != 0u);
}
