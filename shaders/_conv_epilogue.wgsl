// Shared by the conv kernels (included, not a kernel): the fused epilogue that turns an accumulated
// sum into a stored output, y = act(acc + bias[c]) + r or act(acc + bias[c] + r) (RES_FIRST), with
// the pre-activation value stored to `pre` when the backward pass needs it.
// ACT: 0 none, 1 relu, 2 elu(alpha), 3 prelu (one slope or one per channel), 4 gelu (erf form).
// The including kernel declares `params` with the fields has_bias, bias_offset, has_residual,
// store_pre, prelu_per_channel, prelu_offset and alpha; bindings 3-7 are declared here.

// #include _erf

override ACT: u32 = 0u;
override RES_FIRST: bool = false;

@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> prelu_w: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> pre: array<f32>;


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
