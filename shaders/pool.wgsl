// 2d pooling over planes of [N*C, H, W] (contiguous), one invocation per output or input element.
// Output (oh, ow) covers input rows oh*sh - ph + a*dh (a < kh) and columns likewise, clipped to the
// input; padding never wins a max and counts in an average only with count_include_pad (then the
// window is clipped to the padded extent, as PyTorch).
//   max_forward:  out = max over the window, idx = h*W + w of the first maximum (NaN propagates).
//   max_backward: dx[h, w] = sum of dy over the outputs whose idx is (h, w) (gather, no atomics).
//   avg_forward:  out = sum over the window / divisor.
//   avg_backward: dx[h, w] = sum over the windows containing (h, w) of dy / divisor.
// Each launch runs the rows [r0, r1) and columns [c0, c1) of the loop nest: window taps (a, b) in
// the forwards, offsets from the first output that can reach (h, w) in the backwards. A launch
// after the first (first == 0) resumes from what the one before wrote (the running max and its
// index, the partial sum), and avg_forward divides in the last one, so the results are those of
// one launch over the whole nest, in the same order. Why: Mesa's llvmpipe (gallivm; Mesa 22.3.6
// through Dawn's OpenGL backend) counts the loop passes of an invocation (one counter of 65535 per
// batch of 8 invocations, shared by every loop, inner loops in full) and silently leaves every loop
// once it runs out: a 300x300 average pool summed only the first 65k taps. src/ops/pool.ts splits
// the nest so that no launch runs more than LOOP_BUDGET (16384) passes per invocation.
// The max starts from the first tap in the window (best < 0 until then), not from a -inf identity,
// and NaN is found by its bits (is_nan), not by v != v, which a compiler may fold to false.
// #include _strided
// #include _float

struct Params {
  planes: u32,
  H: u32,
  W: u32,
  OH: u32,
  OW: u32,
  kh: u32,
  kw: u32,
  sh: u32,
  sw: u32,
  ph: u32,
  pw: u32,
  dh: u32,
  dw: u32,
  count_include_pad: u32,
  src_offset: u32,   // element offset of what the entry reads: x (forward) or dy (backward)
  r0: u32,           // this launch's part of the loop nest (see above)
  r1: u32,
  c0: u32,
  c1: u32,
  first: u32,
  last: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> saved_idx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 64u);
  if (o >= params.planes * params.OH * params.OW) { return; }
  let ow = o % params.OW;
  let oh = (o / params.OW) % params.OH;
  let plane = o / (params.OW * params.OH);
  let h0 = i32(oh * params.sh) - i32(params.ph);
  let w0 = i32(ow * params.sw) - i32(params.pw);
  var m = -F32_MAX;
  var best = -1;
  if (params.first == 0u) {
    m = out[o];
    best = i32(idx[o]);
  }
  for (var a = params.r0; a < params.r1; a++) {
    let h = h0 + i32(a * params.dh);
    if (h < 0 || h >= i32(params.H)) { continue; }
    for (var b = params.c0; b < params.c1; b++) {
      let w = w0 + i32(b * params.dw);
      if (w < 0 || w >= i32(params.W)) { continue; }
      let i = h * i32(params.W) + w;
      let v = x[params.src_offset + plane * params.H * params.W + u32(i)];
      // the first NaN wins and stays (also across resumed launches), as PyTorch's max_pool2d
      if (best < 0 || (!is_nan(m) && (v > m || is_nan(v)))) {
        m = v;
        best = i;
      }
    }
  }
  out[o] = m;
  idx[o] = f32(best);
}

@compute @workgroup_size(64)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 64u);
  if (i >= params.planes * params.H * params.W) { return; }
  let w = i % params.W;
  let h = (i / params.W) % params.H;
  let plane = i / (params.W * params.H);
  let me = f32(h * params.W + w);
  // Outputs whose window can reach (h, w): oh*sh - ph <= h <= oh*sh - ph + (kh-1)*dh.
  let hp = i32(h + params.ph);
  let wp = i32(w + params.pw);
  let oh_lo = max(0, (hp - i32((params.kh - 1u) * params.dh) + i32(params.sh) - 1) / i32(params.sh));
  let oh_hi = min(i32(params.OH) - 1, hp / i32(params.sh));
  let ow_lo = max(0, (wp - i32((params.kw - 1u) * params.dw) + i32(params.sw) - 1) / i32(params.sw));
  let ow_hi = min(i32(params.OW) - 1, wp / i32(params.sw));
  var acc = 0.0;
  if (params.first == 0u) { acc = dx[i]; }
  for (var oh = oh_lo + i32(params.r0); oh <= min(oh_hi, oh_lo + i32(params.r1) - 1); oh++) {
    for (var ow = ow_lo + i32(params.c0); ow <= min(ow_hi, ow_lo + i32(params.c1) - 1); ow++) {
      let o = (plane * params.OH + u32(oh)) * params.OW + u32(ow);
      if (saved_idx[o] == me) { acc += dy[params.src_offset + o]; }
    }
  }
  dx[i] = acc;
}

fn divisor(oh: u32, ow: u32) -> f32 {
  let h0 = i32(oh * params.sh) - i32(params.ph);
  let w0 = i32(ow * params.sw) - i32(params.pw);
  let h1 = h0 + i32(params.kh);
  let w1 = w0 + i32(params.kw);
  if (params.count_include_pad != 0u) {
    return f32((min(h1, i32(params.H + params.ph)) - h0) * (min(w1, i32(params.W + params.pw)) - w0));
  }
  return f32((min(h1, i32(params.H)) - max(h0, 0)) * (min(w1, i32(params.W)) - max(w0, 0)));
}

@compute @workgroup_size(64)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 64u);
  if (o >= params.planes * params.OH * params.OW) { return; }
  let ow = o % params.OW;
  let oh = (o / params.OW) % params.OH;
  let plane = o / (params.OW * params.OH);
  let h0 = i32(oh * params.sh) - i32(params.ph);
  let w0 = i32(ow * params.sw) - i32(params.pw);
  var acc = 0.0;
  if (params.first == 0u) { acc = out[o]; }
  for (var a = params.r0; a < params.r1; a++) {
    let h = h0 + i32(a);
    if (h < 0 || h >= i32(params.H)) { continue; }
    for (var b = params.c0; b < params.c1; b++) {
      let w = w0 + i32(b);
      if (w < 0 || w >= i32(params.W)) { continue; }
      acc += x[params.src_offset + (plane * params.H + u32(h)) * params.W + u32(w)];
    }
  }
  out[o] = select(acc, acc / divisor(oh, ow), params.last != 0u);
}

@compute @workgroup_size(64)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 64u);
  if (i >= params.planes * params.H * params.W) { return; }
  let w = i % params.W;
  let h = (i / params.W) % params.H;
  let plane = i / (params.W * params.H);
  let hp = i32(h + params.ph);
  let wp = i32(w + params.pw);
  let oh_lo = max(0, (hp - i32(params.kh) + 1 + i32(params.sh) - 1) / i32(params.sh));
  let oh_hi = min(i32(params.OH) - 1, hp / i32(params.sh));
  let ow_lo = max(0, (wp - i32(params.kw) + 1 + i32(params.sw) - 1) / i32(params.sw));
  let ow_hi = min(i32(params.OW) - 1, wp / i32(params.sw));
  var acc = 0.0;
  if (params.first == 0u) { acc = dx[i]; }
  for (var oh = oh_lo + i32(params.r0); oh <= min(oh_hi, oh_lo + i32(params.r1) - 1); oh++) {
    for (var ow = ow_lo + i32(params.c0); ow <= min(ow_hi, ow_lo + i32(params.c1) - 1); ow++) {
      acc += dy[params.src_offset + (plane * params.OH + u32(oh)) * params.OW + u32(ow)] / divisor(u32(oh), u32(ow));
    }
  }
  dx[i] = acc;
}
