// The workgroup GEMM tile core (included, not a kernel), shared by matmul_tiled (matmul.wgsl) and
// conv_tiled (conv.wgsl: the implicit GEMM of every conv, transposed conv and conv gradient), so one
// faster core speeds all of them. A 16x16 workgroup computes a BM x BN tile of C = A[M, K] * B[K, N]
// over the reduction range [k_begin, k_end), staging TK-deep slices of A and B in workgroup memory;
// invocation (lid.x, lid.y) holds the rows lid.y + 16*i (i < TM) and the columns lid.x + 16*j
// (j < 4) as acc[i][j], added to the accumulators it is given.
// The including shader declares TK (slice depth), TM (rows per invocation, 1..4), BM = 16*TM,
// BN = 64, and defines the hooks:
//   gemm_load_a(mm, k, kk) -> f32: A[m0 + mm, k] of its tile (0 past M); mm = tid % BM is the same
//       row at every step, k runs over [k_begin, k_end), kk = k - k0 is the row of the slice;
//   gemm_load_b(nn, k, kk) -> f32: B[k, n0 + nn] (0 past N), nn = tid % BN, likewise;
//   gemm_prefetch(k0): called by every invocation before the slice starting at k0 is staged,
//       between two barriers (conv stages the slice's gather indices there; matmul does nothing).
// The hooks read what the kernel set in private variables (tile origin, batch offsets).
// Every invocation of the workgroup must call it (it has barriers), including those whose outputs
// fall past M or N. Loop passes per invocation, as llvmpipe counts them (a loop of n trips costs
// n + 1, inner loops multiplied out): per slice 1 + (TK*BM/256 + 1) + (TK*BN/256 + 1) + (TK + 1)
// + TK*(TM + 1), plus the hooks' own loops; the hosts split K to stay within their loop budget.

var<workgroup> tile_a: array<f32, BM * TK>;       // [k][m], flat (BM may be an override)
var<workgroup> tile_b: array<array<f32, BN>, TK>; // [k][n]

fn gemm_tile(lid: vec3<u32>, k_begin: u32, k_end: u32, acc_in: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
  let tid = lid.y * 16u + lid.x;
  // Each invocation stages the same A row and B column at every step (256 is a multiple of BM and BN).
  let mm = tid % BM;
  let nn = tid % BN;
  var acc = acc_in;
  gemm_prefetch(k_begin);
  workgroupBarrier();
  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    for (var kk = tid / BM; kk < TK; kk += 256u / BM) {
      var v = 0.0;
      if (k0 + kk < k_end) { v = gemm_load_a(mm, k0 + kk, kk); }
      tile_a[kk * BM + mm] = v;
    }
    for (var kk = tid / BN; kk < TK; kk += 256u / BN) {
      var v = 0.0;
      if (k0 + kk < k_end) { v = gemm_load_b(nn, k0 + kk, kk); }
      tile_b[kk][nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = vec4<f32>(tile_b[kk][lid.x], tile_b[kk][lid.x + 16u], tile_b[kk][lid.x + 32u], tile_b[kk][lid.x + 48u]);
      for (var i = 0u; i < TM; i++) { acc[i] = fma(vec4<f32>(tile_a[kk * BM + lid.y + 16u * i]), bv, acc[i]); }
    }
    // Nothing reads the staged slice or the hooks' state between these two barriers.
    gemm_prefetch(k0 + TK);
    workgroupBarrier();
  }
  return acc;
}
