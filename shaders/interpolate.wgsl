// Resampling of the spatial dims of a contiguous [planes, D, H, W] tensor (planes = N*C; 4D inputs
// run with D = 1), with PyTorch's coordinate rules per dim (d = 0, 1, 2 for D, H, W):
//   nearest (MODE 0): src = o if out == in; o >> 1 if out == 2*in; else min(floor(o * scale), in-1).
//   linear  (MODE 1): s = scale * o (align_corners) or max(scale * (o + 0.5) - 0.5, 0) (not);
//                     i0 = floor(s), i1 = min(i0 + 1, in - 1), lambda = s - i0;
//                     y = sum over taps of prod_d w_d, w = 1 - lambda at i0 and lambda at i1.
// `scale` is computed by the host as PyTorch does (1/scale_factor when given, else in/out;
// (in-1)/(out-1) with align_corners). Bilinear and trilinear are the same kernel (D = 1 for 2D).
// `forward`: one invocation per output element (a gather of 1 or 2^k taps).
// `backward`: one invocation per input element; it gathers dy over the outputs whose taps touch it
// (a candidate window per dim from q = out/in, tightened by the exact per-dim weight), so the
// scatter of the adjoint needs no atomics and is deterministic. The window's ends are found by
// bisection (the outputs that read only inputs before i come first, those that read only inputs
// after it last), and each launch gathers the tile [t0, t1) of offsets into the window per dim,
// adding to what the launches before wrote (first == 0). Why: Mesa's llvmpipe (gallivm; Mesa 22.3.6
// through Dawn's OpenGL backend) counts the loop passes of an invocation (one counter of 65535 per
// batch of 8 invocations, shared by every loop, inner loops in full) and silently leaves every loop
// once it runs out: the backward of a 2x2 -> 600x600 upsampling (a 300x300 window per input) summed
// only part of it. src/ops/interpolate.ts tiles the windows so that no launch runs more than
// LOOP_BUDGET (16384) passes per invocation.
// #include _strided

override MODE: u32 = 1u;

struct Params {
  in_size: vec4<u32>,
  out_size: vec4<u32>,
  scale: vec4<f32>,
  // candidate-window factor per dim: out/in, or (out-1)/(in-1) with align_corners
  q: vec4<f32>,
  planes: u32,
  n: u32,
  align_corners: u32,
  src_offset: u32,
  // backward: this launch's tile of offsets into each dim's window (d, h, w), and whether it is the first
  t0: vec4<u32>,
  t1: vec4<u32>,
  first: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn nearest_index(o: u32, d: u32) -> u32 {
  let n_in = params.in_size[d];
  let n_out = params.out_size[d];
  if (n_out == n_in) { return o; }
  if (n_out == 2u * n_in) { return o >> 1u; }
  return min(u32(floor(f32(o) * params.scale[d])), n_in - 1u);
}

struct Taps {
  i0: u32,
  i1: u32,
  lambda: f32,
}

fn linear_taps(o: u32, d: u32) -> Taps {
  let n_in = params.in_size[d];
  var s: f32;
  if (params.align_corners != 0u) {
    s = params.scale[d] * f32(o);
  } else {
    s = max(params.scale[d] * (f32(o) + 0.5) - 0.5, 0.0);
  }
  let i0 = min(u32(s), n_in - 1u);
  let i1 = select(i0, i0 + 1u, i0 < n_in - 1u);
  return Taps(i0, i1, s - f32(i0));
}

// Weight of input index i in output index o along dim d.
fn weight(o: u32, i: u32, d: u32) -> f32 {
  if (MODE == 0u) {
    return select(0.0, 1.0, nearest_index(o, d) == i);
  }
  let t = linear_taps(o, d);
  var w = 0.0;
  if (t.i0 == i) { w += 1.0 - t.lambda; }
  if (t.i1 == i) { w += t.lambda; }
  return w;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_id(wid, nwg, lid, 256u);
  if (idx >= params.n) { return; }
  let os = params.out_size;
  let is = params.in_size;
  let ow = idx % os.z;
  let oh = (idx / os.z) % os.y;
  let od = (idx / (os.z * os.y)) % os.x;
  let p = idx / (os.z * os.y * os.x);
  let base = params.src_offset + p * is.x * is.y * is.z;
  if (MODE == 0u) {
    let i = (nearest_index(od, 0u) * is.y + nearest_index(oh, 1u)) * is.z + nearest_index(ow, 2u);
    out[idx] = src[base + i];
    return;
  }
  let td = linear_taps(od, 0u);
  let th = linear_taps(oh, 1u);
  let tw = linear_taps(ow, 2u);
  var acc = 0.0;
  for (var a = 0u; a < 2u; a++) {
    let id = select(td.i0, td.i1, a == 1u);
    let wd = select(1.0 - td.lambda, td.lambda, a == 1u);
    if (wd == 0.0) { continue; }
    for (var b = 0u; b < 2u; b++) {
      let ih = select(th.i0, th.i1, b == 1u);
      let wh = select(1.0 - th.lambda, th.lambda, b == 1u);
      if (wh == 0.0) { continue; }
      let row = base + (id * is.y + ih) * is.z;
      acc += wd * wh * ((1.0 - tw.lambda) * src[row + tw.i0] + tw.lambda * src[row + tw.i1]);
    }
  }
  out[idx] = acc;
}

// Output o along dim d reads only inputs before i (its weight on i is 0 and so are all earlier
// outputs'): true for a prefix of the outputs, as the source coordinate grows with o.
fn reads_before(o: u32, i: u32, d: u32) -> bool {
  if (MODE == 0u) { return nearest_index(o, d) < i; }
  let t = linear_taps(o, d);
  return t.i0 < i && !(t.i1 == i && t.lambda > 0.0);
}

// Output o reads no input after i: true for a prefix. The weight on i is nonzero exactly where
// this holds and reads_before does not.
fn reads_up_to(o: u32, i: u32, d: u32) -> bool {
  if (MODE == 0u) { return nearest_index(o, d) <= i; }
  return linear_taps(o, d).i0 <= i;
}

// The outputs along dim d that read input index i: a window from q, clamped, then tightened to the
// first and last output with a nonzero weight by bisection. Returns (lo, hi), lo > hi when empty.
fn window(i: u32, d: u32) -> vec2<i32> {
  let n_out = i32(params.out_size[d]);
  let q = params.q[d];
  var lo = 0;
  var hi = n_out - 1;
  if (q <= f32(n_out)) {
    lo = max(i32(floor((f32(i) - 1.0) * q)) - 2, 0);
    hi = min(i32(ceil((f32(i) + 2.0) * q)) + 2, n_out - 1);
  }
  // first o in [lo, hi] that does not read only inputs before i
  var a = lo;
  var b = hi + 1;
  while (a < b) {
    let mid = (a + b) / 2;
    if (reads_before(u32(mid), i, d)) { a = mid + 1; } else { b = mid; }
  }
  let first = a;
  // last o in [first, hi] that reads no input after i
  b = hi + 1;
  while (a < b) {
    let mid = (a + b) / 2;
    if (reads_up_to(u32(mid), i, d)) { a = mid + 1; } else { b = mid; }
  }
  return vec2<i32>(first, a - 1);
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_id(wid, nwg, lid, 256u);
  if (idx >= params.n) { return; }
  let os = params.out_size;
  let is = params.in_size;
  let iw = idx % is.z;
  let ih = (idx / is.z) % is.y;
  let id = (idx / (is.z * is.y)) % is.x;
  let p = idx / (is.z * is.y * is.x);
  let base = params.src_offset + p * os.x * os.y * os.z;
  let rd = window(id, 0u);
  let rh = window(ih, 1u);
  let rw = window(iw, 2u);
  var acc = 0.0;
  if (params.first == 0u) { acc = out[idx]; }
  let t0 = vec3<i32>(params.t0.xyz);
  let t1 = vec3<i32>(params.t1.xyz);
  for (var od = rd.x + t0.x; od <= min(rd.y, rd.x + t1.x - 1); od++) {
    let wd = weight(u32(od), id, 0u);
    for (var oh = rh.x + t0.y; oh <= min(rh.y, rh.x + t1.y - 1); oh++) {
      let wdh = wd * weight(u32(oh), ih, 1u);
      let row = base + (u32(od) * os.y + u32(oh)) * os.z;
      var s = 0.0;
      for (var ow = rw.x + t0.z; ow <= min(rw.y, rw.x + t1.z - 1); ow++) {
        s += weight(u32(ow), iw, 2u) * src[row + u32(ow)];
      }
      acc += wdh * s;
    }
  }
  out[idx] = acc;
}
