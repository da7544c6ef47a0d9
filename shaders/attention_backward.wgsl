// Fused scaled dot-product attention, backward. With s = scale * q k^T + bias, p = exp(s - lse)
// (lse saved by the forward, so p is recomputed tile by tile and never stored), o = p v, dO given:
//   delta[i] = sum_d dO[i, d] o[i, d]  (= sum_j p[i, j] dp[i, j])
//   dp[i, j] = dO[i] . v[j],   ds[i, j] = p[i, j] (dp[i, j] - delta[i])
//   dq[i] = scale * sum_j ds[i, j] k[j],  dk[j] = scale * sum_i ds[i, j] q[i],  dv[j] = sum_i p[i, j] dO[i]
//   d(mask)[i, j] = ds[i, j]  (in full [B, H, Lq, Lk]; the caller reduces it to the mask's shape)
//   d(rel)[i, ky] = sum_kx ds[i, ky * kw + kx],  d(rel)[i, kh + kx] = sum_ky ds[i, ky * kw + kx].
// Layouts, HEAD_DIM and TILE as in attention.wgsl; dO and o are contiguous [B, H, Lq, D]; stats [B, H, Lq, 2] holds
// (lse, delta). Entry points, in launch order (each binds at most 8 storage buffers):
//   backward_delta: delta into stats slot 1; one invocation per query row.
//   backward_dq:    dq; one invocation per query row, K/V tiles in workgroup memory. Grid [ceil(Lq/64), H, B].
//   backward_dbias: BIAS_GRAD 0: d(mask) in full, 1: d(rel); same structure as backward_dq, run only
//                   when the bias needs a gradient.
//   backward_dkdv:  dk and dv into one buffer dkv = [dk | dv] (each [B, H, Lk, D]); one invocation
//                   per key row, tiles of scale * q, dO and stats in workgroup memory
//                   (TILE * D <= 1024). Grid [ceil(Lk/64), H, B].

// #include _attention

override BIAS_GRAD: u32 = 0u;

@group(0) @binding(6) var<storage, read> d_o: array<f32>;
@group(0) @binding(7) var<storage, read> o: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad: array<f32>; // dq, d(mask), d(rel) or dkv

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

var<workgroup> k_tile: array<f32, 2048>; // [T][D] keys and values
var<workgroup> v_tile: array<f32, 2048>;

// Shared by backward_dq and backward_dbias: walks the keys of one query row in tiles, calling
// the ds consumer selected by `what` (0: dq accumulator, 1: bias gradient).
fn query_rows(wid: vec3<u32>, lid: u32, what: u32) {
  let D = head_dim();
  let T = tile_len();
  let b = wid.z;
  let h = wid.y;
  let i = wid.x * ROWS + lid;
  let valid = i < params.Lq;
  let qs = params.q_strides;
  let ks = params.k_strides;
  let vs = params.v_strides;
  let ic = min(i, params.Lq - 1u);
  let qb = params.q_offset + b * qs.x + h * qs.y + ic * qs.z;
  let kb = params.k_offset + b * ks.x + h * ks.y;
  let vb = params.v_offset + b * vs.x + h * vs.y;
  let row = (b * params.H + h) * params.Lq + ic;
  let kh = params.rel_kh;
  let kw = params.rel_kw;
  let rel_row = row * (kh + kw);

  var qr: array<f32, MAX_D>;
  var gr: array<f32, MAX_D>;
  var acc: array<f32, MAX_D>;
  for (var d = 0u; d < D; d++) {
    qr[d] = q[qb + d * qs.w] * params.scale;
    gr[d] = d_o[row * D + d];
    acc[d] = 0.0;
  }
  let li = stats[2u * row];
  let dl = stats[2u * row + 1u];
  if (valid && what == 1u && BIAS_GRAD == 1u) {
    for (var t = 0u; t < kh + kw; t++) { grad[rel_row + t] = 0.0; }
  }

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
      for (var jj = 0u; jj < n; jj++) {
        let j = k0 + jj;
        var sd = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
          sd = fma(qr[d], k_tile[jj * D + d], sd);
          dp = fma(gr[d], v_tile[jj * D + d], dp);
        }
        let p = exp(sd + score_bias(b, h, i, j) - li);
        let ds = p * (dp - dl);
        if (what == 0u) {
          for (var d = 0u; d < D; d++) { acc[d] = fma(ds, k_tile[jj * D + d], acc[d]); }
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
    for (var d = 0u; d < D; d++) { grad[row * D + d] = acc[d] * params.scale; }
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

var<workgroup> q_tile: array<f32, 1024>; // [T][D] scale * q, and dO
var<workgroup> g_tile: array<f32, 1024>;
var<workgroup> lse_tile: array<f32, 64>;
var<workgroup> delta_tile: array<f32, 64>;

@compute @workgroup_size(64)
fn backward_dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let D = head_dim();
  let T = tile_len();
  let b = wid.z;
  let h = wid.y;
  let j = wid.x * ROWS + lid;
  let valid = j < params.Lk;
  let qs = params.q_strides;
  let ks = params.k_strides;
  let vs = params.v_strides;
  let jc = min(j, params.Lk - 1u);
  let kb = params.k_offset + b * ks.x + h * ks.y + jc * ks.z;
  let vb = params.v_offset + b * vs.x + h * vs.y + jc * vs.z;
  let qb = params.q_offset + b * qs.x + h * qs.y;
  let bh = b * params.H + h;

  var kr: array<f32, MAX_D>;
  var vr: array<f32, MAX_D>;
  var dkr: array<f32, MAX_D>;
  var dvr: array<f32, MAX_D>;
  for (var d = 0u; d < D; d++) {
    kr[d] = k[kb + d * ks.w];
    vr[d] = v[vb + d * vs.w];
    dkr[d] = 0.0;
    dvr[d] = 0.0;
  }

  for (var i0 = 0u; i0 < params.Lq; i0 += T) {
    let n = min(T, params.Lq - i0);
    for (var t = lid; t < n * D; t += ROWS) {
      let i = i0 + t / D;
      let d = t % D;
      q_tile[t] = q[qb + i * qs.z + d * qs.w] * params.scale;
      g_tile[t] = d_o[(bh * params.Lq + i) * D + d];
    }
    if (lid < n) {
      lse_tile[lid] = stats[2u * (bh * params.Lq + i0 + lid)];
      delta_tile[lid] = stats[2u * (bh * params.Lq + i0 + lid) + 1u];
    }
    workgroupBarrier();
    if (valid) {
      for (var ii = 0u; ii < n; ii++) {
        var sd = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
          sd = fma(q_tile[ii * D + d], kr[d], sd);
          dp = fma(g_tile[ii * D + d], vr[d], dp);
        }
        let p = exp(sd + score_bias(b, h, i0 + ii, j) - lse_tile[ii]);
        let ds = p * (dp - delta_tile[ii]);
        for (var d = 0u; d < D; d++) {
          dvr[d] = fma(p, g_tile[ii * D + d], dvr[d]);
          dkr[d] = fma(ds, q_tile[ii * D + d], dkr[d]);
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    // q_tile holds scale * q, so dk already carries the scale.
    let r = (bh * params.Lk + j) * D;
    let half = params.BH * params.Lk * D;
    for (var d = 0u; d < D; d++) {
      grad[r + d] = dkr[d];
      grad[half + r + d] = dvr[d];
    }
  }
}
