// Shared by the conv kernels (included, not a kernel): the fused epilogue that turns an accumulated
// sum into a stored output, y = act(acc + bias[c]) + r or act(acc + bias[c] + r) (RES_FIRST), with
// the pre-activation value stored to `pre` when the backward pass needs it; and sum_splits, the
// pairwise sum of a split reduction's partials, read by the passes that finish a split reduction.
// ACT: 0 none, 1 relu, 2 elu(alpha), 3 prelu (one slope or one per channel), 4 gelu (erf form).
// The including kernel declares `params` with the fields has_bias, bias_offset, has_residual,
// store_pre, prelu_per_channel, prelu_offset and alpha; bindings 3-8 are declared here.

// #include _erf

override ACT: u32 = 0u;
override RES_FIRST: bool = false;

@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> prelu_w: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> pre: array<f32>;
@group(0) @binding(8) var<storage, read> partials: array<f32>;


fn activate(v: f32, c: u32) -> f32 {
  switch ACT {
    case 1u: { return max(v, 0.0); }
    case 2u: { return select(params.alpha * (exp(v) - 1.0), v, v > 0.0); }
    case 3u: { return select(prelu_w[params.prelu_offset + select(0u, c, params.prelu_per_channel != 0u)] * v, v, v > 0.0); }
    case 4u: { return 0.5 * v * (1.0 + erf_f32(v * SQRT1_2)); }
    default: { return v; }
  }
}

// Stores output element idx (channel c) from its accumulated sum.
fn finish(idx: u32, c: u32, acc: f32) {
  var v = acc;
  if (params.has_bias != 0u) { v += bias[params.bias_offset + c]; }
  if (RES_FIRST && params.has_residual != 0u) { v += residual[idx]; }
  if (params.store_pre != 0u) { pre[idx] = v; }
  v = activate(v, c);
  if (!RES_FIRST && params.has_residual != 0u) { v += residual[idx]; }
  out[idx] = v;
}

// The sum of partials[first + s * stride] over s < n (n <= 4096), pairwise in a fixed order:
// blocks of 8 partials are summed as balanced trees (a short block padded with zeros), and the
// stack holds subtotals of 2^j consecutive blocks, merged as in binary counting, so the rounding
// error grows with log2(n) instead of n. About 3 loop iterations per 8 partials (llvmpipe's budget).
fn sum_splits(first: u32, stride: u32, n: u32) -> f32 {
  var stack: array<f32, 10>;
  var top = 0u;
  for (var s = 0u; s < n; s += 8u) {
    let last = n - 1u;
    var q: array<f32, 8>;
    q[0] = partials[first + s * stride];
    q[1] = select(0.0, partials[first + min(s + 1u, last) * stride], s + 1u <= last);
    q[2] = select(0.0, partials[first + min(s + 2u, last) * stride], s + 2u <= last);
    q[3] = select(0.0, partials[first + min(s + 3u, last) * stride], s + 3u <= last);
    q[4] = select(0.0, partials[first + min(s + 4u, last) * stride], s + 4u <= last);
    q[5] = select(0.0, partials[first + min(s + 5u, last) * stride], s + 5u <= last);
    q[6] = select(0.0, partials[first + min(s + 6u, last) * stride], s + 6u <= last);
    q[7] = select(0.0, partials[first + min(s + 7u, last) * stride], s + 7u <= last);
    var v = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
    for (var m = s / 8u + 1u; (m & 1u) == 0u; m = m >> 1u) {
      top -= 1u;
      v = stack[top] + v;
    }
    stack[top] = v;
    top += 1u;
  }
  var acc = 0.0;
  while (top > 0u) {
    top -= 1u;
    acc = stack[top] + acc;
  }
  return acc;
}
