// Elementwise ops: out[i] = f(a[i], b[i], c[i]) over the broadcast shape, every operand strided
// (views read without copies; broadcast dims have stride 0). The op is the override OP, so one
// pipeline per op serves every shape. Also the backward rules that are elementwise
// (relu/gelu/elu/sigmoid/tanh/prelu grads) and `fill`.
// sin and cos are evaluated by sin_cos(), not WGSL's builtins (see there).
// #include _strided
// #include _erf

override OP: u32 = 0u;
// Every operand dense over the whole index space (after the caller merged dims): element i is at
// offset + i, and no index arithmetic runs (it costs more than the op on CPU adapters).
override DENSE: bool = false;

struct Params {
  shape: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
  c_strides: array<vec4<u32>, 2>,
  out_strides: array<vec4<u32>, 2>,
  ndim: u32,
  n: u32,
  a_offset: u32,
  b_offset: u32,
  c_offset: u32,
  out_offset: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Offsets of element i in (out, a, b, c): one unravel of i shared by every operand, one integer
// division per dim (divisions are the dearest part on CPU adapters).
fn offsets(i: u32) -> vec4<u32> {
  var off = vec4<u32>(params.out_offset, params.a_offset, params.b_offset, params.c_offset);
  if (DENSE) { return off + i; }
  var rem = i;
  for (var d = i32(params.ndim) - 1; d >= 0; d--) {
    let q = u32(d) / 4u;
    let r = u32(d) % 4u;
    let n = params.shape[q][r];
    let next = rem / n;
    off += (rem - next * n) * vec4<u32>(params.out_strides[q][r], params.a_strides[q][r], params.b_strides[q][r], params.c_strides[q][r]);
    rem = next;
  }
  return off;
}

const INV_SQRT_2PI: f32 = 0.3989422804014327;
const TWO_PI: f32 = 6.283185307179586;

// (sin x, cos x) to about 1e-7 (plus x's own rounding): WGSL's sin and cos promise only 2^-11
// absolute error on [-pi, pi] (SwiftShader's are 2e-4 off near +-1), so x is reduced to a quarter
// turn q and y in [-pi/4, pi/4] (x = q pi/2 + y) and sin y, cos y come from their Taylor series to
// y^9 / y^8 (truncation error under 3e-9).
fn sin_cos(x: f32) -> vec2<f32> {
  let t = x * (1.0 / TWO_PI);
  let r = 4.0 * (t - round(t));                              // quarter turns, in [-2, 2]
  let q = round(r);
  let y = (r - q) * (0.25 * TWO_PI);
  let y2 = y * y;
  let sy = y * (1.0 - y2 / 6.0 * (1.0 - y2 / 20.0 * (1.0 - y2 / 42.0 * (1.0 - y2 / 72.0))));
  let cy = 1.0 - y2 / 2.0 * (1.0 - y2 / 12.0 * (1.0 - y2 / 30.0 * (1.0 - y2 / 56.0)));
  switch (u32(i32(q) + 4) % 4u) {
    case 1u: { return vec2<f32>(cy, -sy); }
    case 2u: { return vec2<f32>(-sy, -cy); }
    case 3u: { return vec2<f32>(-cy, sy); }
    default: { return vec2<f32>(sy, cy); }
  }
}

fn sigmoid_f32(x: f32) -> f32 {
  // stable for large |x|
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

// d/dx x^e = e * x^(e-1), for negative x with integer exponents and at x = 0 too.
fn pow_grad(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 0.0; }
  if (e == 1.0) { return 1.0; }
  if (e == 2.0) { return 2.0 * x; }
  let p = e - 1.0;
  var m: f32;
  if (x == 0.0) {
    m = select(select(0.0, 1.0, p == 0.0), 1.0 / abs(x), p < 0.0); // 1/|0| = +inf
  } else if (x < 0.0 && p == round(p)) {
    m = pow(-x, p);
    if ((i32(p) & 1) == 1) { m = -m; }
  } else {
    m = pow(x, p);
  }
  return e * m;
}

fn unary_op(x: f32) -> f32 {
  let alpha = params.alpha;
  let beta = params.beta;
  switch OP {
    case 0u: { return x; }                                   // copy
    case 1u: { return -x; }                                  // neg
    case 2u: { return exp(x); }                              // exp
    case 3u: { return log(x); }                              // log
    case 4u: { return sqrt(x); }                             // sqrt
    case 5u: { return inverseSqrt(x); }                      // rsqrt
    case 6u: { return abs(x); }                              // abs
    case 7u: { return sigmoid_f32(x); }                      // sigmoid
    case 8u: { return tanh(clamp(x, -15.0, 15.0)); }         // tanh (clamped: SwiftShader's tanh overflows)
    case 9u: { return max(x, 0.0); }                         // relu
    case 10u: { return 0.5 * x * (1.0 + erf_f32(x * SQRT1_2)); } // gelu (erf form)
    case 11u: { return select(alpha * (exp(x) - 1.0), x, x > 0.0); } // elu
    case 12u: {                                              // pow by a scalar exponent alpha
      if (alpha == 2.0) { return x * x; }
      if (alpha == 1.0) { return x; }
      if (alpha == 0.5) { return sqrt(x); }
      if (alpha == round(alpha) && x < 0.0) {
        let m = pow(-x, alpha);
        return select(m, -m, (i32(alpha) & 1) == 1);
      }
      return pow(x, alpha);
    }
    case 13u: { return clamp(x, alpha, beta); }              // clamp(min=alpha, max=beta)
    case 14u: { return x * alpha + beta; }                   // affine (scale, add a scalar)
    case 15u: { return alpha; }                              // fill
    case 16u: { return select(0.0, 1.0, x > alpha); }        // x > scalar
    case 17u: { return select(0.0, 1.0, x < alpha); }        // x < scalar
    case 18u: { return select(0.0, 1.0, x == alpha); }       // x == scalar
    case 19u: { return sign(x); }                            // sign
    case 20u: { return select(0.0, 1.0, x >= alpha && x <= beta); } // inside [alpha, beta]
    case 21u: { return sin_cos(x).x; }                       // sin
    case 22u: { return sin_cos(x).y; }                       // cos
    default: { return x; }
  }
}

fn binary_op(x: f32, y: f32) -> f32 {
  let alpha = params.alpha;
  switch OP {
    case 0u: { return x + y; }                               // add
    case 1u: { return x - y; }                               // sub
    case 2u: { return x * y; }                               // mul
    case 3u: { return x / y; }                               // div
    case 4u: { return pow(x, y); }                           // pow (x > 0)
    case 5u: { return max(x, y); }                           // maximum
    case 6u: { return min(x, y); }                           // minimum
    case 7u: { return select(y * x, x, x > 0.0); }           // prelu(x, weight y)
    case 8u: { return select(0.0, 1.0, x > y); }             // gt
    case 9u: { return select(0.0, 1.0, x < y); }             // lt
    case 10u: { return select(0.0, 1.0, x == y); }           // eq
    case 11u: { return select(0.0, y, x > 0.0); }            // relu backward: (x, dy)
    case 12u: {                                              // gelu backward: (x, dy)
      let cdf = 0.5 * (1.0 + erf_f32(x * SQRT1_2));
      let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
      return y * (cdf + x * pdf);
    }
    case 13u: { return select(y * alpha * exp(x), y, x > 0.0); } // elu backward: (x, dy)
    case 14u: { return y * x * (1.0 - x); }                  // sigmoid backward: (out, dy)
    case 15u: { return y * (1.0 - x * x); }                  // tanh backward: (out, dy)
    case 19u: { return y * pow_grad(x, alpha); }             // pow backward to base: (x, dy), exponent alpha
    default: { return x; }
  }
}

fn ternary_op(x: f32, y: f32, z: f32) -> f32 {
  switch OP {
    case 0u: { return select(z, y, x != 0.0); }              // where(cond, a, b)
    case 1u: { return select(z * y, z, x > 0.0); }           // prelu backward to x: (x, weight, dy)
    case 2u: { return select(z * x, 0.0, x > 0.0); }         // prelu backward to weight, elementwise: (x, weight, dy)
    case 4u: { return z * pow_grad(x, y); }                  // pow backward to base: (x, exponent, dy)
    default: { return x; }
  }
}

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let o = offsets(i);
  out[o.x] = unary_op(a[o.y]);
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  out[params.out_offset + i] = params.alpha;
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let o = offsets(i);
  out[o.x] = binary_op(a[o.y], b[o.z]);
}

@compute @workgroup_size(256)
fn ternary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let o = offsets(i);
  out[o.x] = ternary_op(a[o.y], b[o.z], c[o.w]);
}
