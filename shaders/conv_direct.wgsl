// Direct convolution for stride 1, dilation 1, one group (V-Net's 5x5x5 convs, 'same' 3x3 convs):
// register-blocked so each value loaded from memory feeds many multiply-adds. CPU adapters
// (SwiftShader, llvmpipe) pay per load far more than per FMA, and this form needs about 20x fewer
// loads per FMA than the implicit-GEMM loaders in conv.wgsl.
//   direct_pack_weight: W [Cout, Cin, kD, kH, kW] -> P [I, kD, kH, kW, ceil(O/4)] of vec4 (zero
//       padded), with (I, O) = (Cin, Cout) for the conv, or (Cout, Cin) and the taps reversed for the
//       conv that computes the input gradient (FLIP).
//   direct_conv: y[b, o, d, h, w] = sum_{i, kd, kh, kw} P[i, kd, kh, kw][o] * x[b, i, d+kd-pD, h+kh-pH, w+kw-pW]
//       (x = 0 outside), then the fused epilogue. One invocation computes 4 output channels (a vec4
//       of P) at TN consecutive w: per (i, kd, kh) it loads TN+kW-1 inputs and kW weight vectors
//       for 4*TN*kW FMAs. The input gradient of a conv with leading padding p is this with the
//       flipped packing and leading padding k-1-p. Split (splits > 1): z also runs over chunks of
//       ci_chunk input channels, each invocation sums one chunk, and the partial sums of a slab of
//       rows (b, d, h) go to out as [splits, slab rows, Cout, W]; direct_finish sums them.
//   direct_finish: y = the epilogue of the pairwise sum of a split direct_conv's partials.
//   direct_weight_grad: dW[o, i, kd, kh, kw] = sum_{b, d, h, w} g[b, o, d, h, w] * x[b, i, d+kd-pD, h+kh-pH, w+kw-pW]
//       One invocation holds 4 output channels x (kH x kW) taps for one unit (o4, i, kd) and sums
//       over a chunk of (b, d, h) rows: per row and 8 columns it loads 32 g values, used by every
//       tap, and kH rows of 8+kW-1 inputs. One chunk (splits = 1) writes dW; else the chunks'
//       partials of a slab of units go to dw_part as [splits, slab units, 4, kH*kW] and
//       direct_weight_grad_finish sums them pairwise into dW.
// Each invocation's loops run a bounded number of iterations whatever the shape (the caller picks
// ci_chunk and rows_per_chunk from its count of these loops): llvmpipe leaves every loop of an
// invocation once 65535 iterations have run in it, silently.
// #include _conv_epilogue

override TN: u32 = 16u;      // output columns per invocation (<= 16, TN + kW - 1 <= 32)
override FLIP: bool = false; // direct_pack_weight: pack for the input gradient

struct Params {
  in_size: vec4<u32>,   // D, H, W of x
  out_size: vec4<u32>,  // D, H, W of y
  ksize: vec4<u32>,
  pad: vec4<u32>,       // leading padding per axis
  batch: u32,
  cin: u32,
  cout: u32,
  co4: u32,             // ceil(cout / 4)
  wchunks: u32,         // ceil(out W / TN)
  ci_chunk: u32,        // input channels per split
  splits: u32,          // 1: direct_conv stores through the epilogue; else it writes partials
  row0: u32,            // the slab's first (b, d, h) row
  slab_rows: u32,
  z0: u32,              // added to workgroup_id.z (dispatches past the per-dimension limit)
  b_offset: u32,        // x's element offset
  bias_offset: u32,
  has_bias: u32,
  has_residual: u32,
  prelu_per_channel: u32,
  prelu_offset: u32,
  store_pre: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a_buf: array<vec4<f32>>; // packed weight
@group(0) @binding(2) var<storage, read> b_buf: array<f32>;       // x

@compute @workgroup_size(64)
fn direct_conv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;
  let z = wid.z + params.z0;
  let o4 = z % params.co4;
  let split = z / params.co4;
  let osz = params.out_size.xyz;
  if (n >= params.slab_rows * params.wchunks) { return; }
  let wc = n % params.wchunks;
  let rl = n / params.wchunks;
  let r = params.row0 + rl;
  let h = r % osz.y;
  let d = (r / osz.y) % osz.x;
  let b = r / (osz.y * osz.x);
  let isz = vec3<i32>(params.in_size.xyz);
  let k = params.ksize.xyz;
  let w0 = i32(wc * TN) - i32(params.pad.z);
  let span = TN + k.z - 1u;
  let hw = params.in_size.y * params.in_size.z;
  var acc: array<vec4<f32>, 16>;
  var xr: array<f32, 32>;
  let i1 = min(params.cin, (split + 1u) * params.ci_chunk);
  for (var i = split * params.ci_chunk; i < i1; i++) {
    let xbase = params.b_offset + (b * params.cin + i) * params.in_size.x * hw;
    for (var kd = 0u; kd < k.x; kd++) {
      let id = i32(d + kd) - i32(params.pad.x);
      if (id < 0 || id >= isz.x) { continue; }
      for (var kh = 0u; kh < k.y; kh++) {
        let ih = i32(h + kh) - i32(params.pad.y);
        if (ih < 0 || ih >= isz.y) { continue; }
        let rbase = xbase + u32(id) * hw + u32(ih) * params.in_size.z;
        for (var j = 0u; j < span; j++) {
          let iw = w0 + i32(j);
          xr[j] = select(0.0, b_buf[rbase + u32(clamp(iw, 0, isz.z - 1))], iw >= 0 && iw < isz.z);
        }
        let wbase = ((i * k.x + kd) * k.y + kh) * k.z * params.co4 + o4;
        for (var kw = 0u; kw < k.z; kw++) {
          let wv = a_buf[wbase + kw * params.co4];
          // the TN columns written out (TN is 4, 8 or 16), so they add no loop iterations
          acc[0] = fma(wv, vec4<f32>(xr[kw + 0u]), acc[0]); acc[1] = fma(wv, vec4<f32>(xr[kw + 1u]), acc[1]); acc[2] = fma(wv, vec4<f32>(xr[kw + 2u]), acc[2]); acc[3] = fma(wv, vec4<f32>(xr[kw + 3u]), acc[3]);
          if (TN > 4u) { acc[4] = fma(wv, vec4<f32>(xr[kw + 4u]), acc[4]); acc[5] = fma(wv, vec4<f32>(xr[kw + 5u]), acc[5]); acc[6] = fma(wv, vec4<f32>(xr[kw + 6u]), acc[6]); acc[7] = fma(wv, vec4<f32>(xr[kw + 7u]), acc[7]); }
          if (TN > 8u) {
            acc[8] = fma(wv, vec4<f32>(xr[kw + 8u]), acc[8]); acc[9] = fma(wv, vec4<f32>(xr[kw + 9u]), acc[9]); acc[10] = fma(wv, vec4<f32>(xr[kw + 10u]), acc[10]); acc[11] = fma(wv, vec4<f32>(xr[kw + 11u]), acc[11]);
            acc[12] = fma(wv, vec4<f32>(xr[kw + 12u]), acc[12]); acc[13] = fma(wv, vec4<f32>(xr[kw + 13u]), acc[13]); acc[14] = fma(wv, vec4<f32>(xr[kw + 14u]), acc[14]); acc[15] = fma(wv, vec4<f32>(xr[kw + 15u]), acc[15]);
          }
        }
      }
    }
  }
  let ovol = osz.x * osz.y * osz.z;
  let obase = (d * osz.y + h) * osz.z;
  let pbase = split * params.slab_rows * params.cout * osz.z + rl * params.cout * osz.z;
  for (var j = 0u; j < TN; j++) {
    let w = wc * TN + j;
    if (w >= osz.z) { break; }
    for (var c = 0u; c < 4u; c++) {
      let o = o4 * 4u + c;
      if (o >= params.cout) { break; }
      if (params.splits == 1u) { finish((b * params.cout + o) * ovol + obase + w, o, acc[j][c]); }
      else { out[pbase + o * osz.z + w] = acc[j][c]; }
    }
  }
}

@compute @workgroup_size(64)
fn direct_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * 64u + lid;   // over the slab's [rows, cout, W]
  let osz = params.out_size.xyz;
  let elems = params.slab_rows * params.cout * osz.z;
  if (e >= elems) { return; }
  let w = e % osz.z;
  let o = (e / osz.z) % params.cout;
  let r = params.row0 + e / (osz.z * params.cout);
  let h = r % osz.y;
  let d = (r / osz.y) % osz.x;
  let b = r / (osz.y * osz.x);
  finish((b * params.cout + o) * osz.x * osz.y * osz.z + (d * osz.y + h) * osz.z + w, o, sum_splits(e, elems, params.splits));
}

struct PackParams {
  cout: u32,    // W's dims 0 and 1
  cin: u32,
  kvol: u32,
  o4: u32,      // ceil(O / 4) of the packing
  w_offset: u32,
}

@group(0) @binding(0) var<uniform> pack: PackParams;
@group(0) @binding(1) var<storage, read> w_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<vec4<f32>>;

@compute @workgroup_size(64)
fn direct_pack_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.y * nwg.x + wid.x) * 64u + lid;   // over I * kvol * o4
  let I = select(pack.cin, pack.cout, FLIP);
  let O = select(pack.cout, pack.cin, FLIP);
  if (n >= I * pack.kvol * pack.o4) { return; }
  let o4 = n % pack.o4;
  let t = n / pack.o4;
  let kp = t % pack.kvol;
  let i = t / pack.kvol;
  var v = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    let o = o4 * 4u + c;
    if (o >= O) { break; }
    if (FLIP) { v[c] = w_src[pack.w_offset + (i * pack.cin + o) * pack.kvol + pack.kvol - 1u - kp]; }
    else { v[c] = w_src[pack.w_offset + (o * pack.cin + i) * pack.kvol + kp]; }
  }
  packed[n] = v;
}

struct GradParams {
  in_size: vec4<u32>,   // D, H, W of x
  out_size: vec4<u32>,  // D, H, W of g
  ksize: vec4<u32>,
  pad: vec4<u32>,
  batch: u32,
  cin: u32,
  cout: u32,
  co4: u32,
  rows_per_chunk: u32,  // (b, d, h) rows of g per chunk (split)
  splits: u32,          // chunks; 1: direct_weight_grad writes dW itself
  unit0: u32,           // the slab's first unit (o4, i, kd)
  slab_units: u32,
  z0: u32,              // added to workgroup_id.z
  g_offset: u32,
  x_offset: u32,
}

@group(0) @binding(0) var<uniform> gp: GradParams;
@group(0) @binding(1) var<storage, read> g_buf: array<f32>;
@group(0) @binding(2) var<storage, read> x_buf: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw_part: array<f32>;

const GB: u32 = 8u; // output columns per step

@compute @workgroup_size(64)
fn direct_weight_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let u = (wid.y * nwg.x + wid.x) * 64u + lid;   // over the slab's units
  let k = gp.ksize.xyz;
  if (u >= gp.slab_units) { return; }
  let n = gp.unit0 + u;                           // unit (o4, i, kd)
  let kd = n % k.x;
  let i = (n / k.x) % gp.cin;
  let o4 = n / (k.x * gp.cin);
  let chunk = wid.z + gp.z0;
  let osz = gp.out_size.xyz;
  let isz = vec3<i32>(gp.in_size.xyz);
  let rows = gp.batch * osz.x * osz.y;
  let r0 = chunk * gp.rows_per_chunk;
  let r1 = min(rows, r0 + gp.rows_per_chunk);
  let gvol = osz.x * osz.y * osz.z;
  let hw = gp.in_size.y * gp.in_size.z;
  var acc: array<vec4<f32>, 64>;  // [kh][kw], kH * kW <= 64
  var gv: array<vec4<f32>, GB>;   // g at GB columns, 4 channels
  var xr: array<f32, 24>;         // GB + kW - 1 inputs of one row
  for (var r = r0; r < r1; r++) {
    let h = r % osz.y;
    let d = (r / osz.y) % osz.x;
    let b = r / (osz.y * osz.x);
    let id = i32(d + kd) - i32(gp.pad.x);
    if (id < 0 || id >= isz.x) { continue; }
    let xplane = gp.x_offset + (b * gp.cin + i) * gp.in_size.x * hw + u32(id) * hw;
    let grow = gp.g_offset + (b * gp.cout) * gvol + (d * osz.y + h) * osz.z;
    for (var w0 = 0u; w0 < osz.z; w0 += GB) {
      // each g value loaded once serves every (kh, kw) tap
      let o0 = o4 * 4u;
      for (var j = 0u; j < GB; j++) {
        var v = vec4<f32>(0.0);
        let w = w0 + j;
        if (w < osz.z) {
          let at = grow + o0 * gvol + w;
          v.x = g_buf[at];
          if (o0 + 1u < gp.cout) { v.y = g_buf[at + gvol]; }
          if (o0 + 2u < gp.cout) { v.z = g_buf[at + 2u * gvol]; }
          if (o0 + 3u < gp.cout) { v.w = g_buf[at + 3u * gvol]; }
        }
        gv[j] = v;
      }
      for (var kh = 0u; kh < k.y; kh++) {
        let ih = i32(h + kh) - i32(gp.pad.y);
        if (ih < 0 || ih >= isz.y) { continue; }
        let xrow = xplane + u32(ih) * gp.in_size.z;
        for (var j = 0u; j < GB + k.z - 1u; j++) {
          let iw = i32(w0 + j) - i32(gp.pad.z);
          xr[j] = select(0.0, x_buf[xrow + u32(clamp(iw, 0, isz.z - 1))], iw >= 0 && iw < isz.z);
        }
        for (var kw = 0u; kw < k.z; kw++) {
          var a = acc[kh * k.z + kw];
          // the GB = 8 columns written out (no loop iterations)
          a = fma(gv[0], vec4<f32>(xr[kw + 0u]), a); a = fma(gv[1], vec4<f32>(xr[kw + 1u]), a); a = fma(gv[2], vec4<f32>(xr[kw + 2u]), a); a = fma(gv[3], vec4<f32>(xr[kw + 3u]), a);
          a = fma(gv[4], vec4<f32>(xr[kw + 4u]), a); a = fma(gv[5], vec4<f32>(xr[kw + 5u]), a); a = fma(gv[6], vec4<f32>(xr[kw + 6u]), a); a = fma(gv[7], vec4<f32>(xr[kw + 7u]), a);
          acc[kh * k.z + kw] = a;
        }
      }
    }
  }
  let kvol = k.x * k.y * k.z;
  let khw = k.y * k.z;
  for (var c = 0u; c < 4u; c++) {
    let o = o4 * 4u + c;
    if (o >= gp.cout) { break; }
    var base = (o * gp.cin + i) * kvol + kd * khw;                      // dW
    if (gp.splits > 1u) { base = (chunk * gp.slab_units + u) * 4u * khw + c * khw; } // partials
    for (var t = 0u; t < khw; t++) { dw_part[base + t] = acc[t][c]; }
  }
}

@compute @workgroup_size(64)
fn direct_weight_grad_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * 64u + lid;   // over the slab's [units, 4, kH*kW]
  let k = gp.ksize.xyz;
  let khw = k.y * k.z;
  let elems = gp.slab_units * 4u * khw;
  if (e >= elems) { return; }
  let t = e % khw;
  let n = gp.unit0 + e / (4u * khw);
  let o = (n / (k.x * gp.cin)) * 4u + (e / khw) % 4u;
  if (o >= gp.cout) { return; }
  let i = (n / k.x) % gp.cin;
  out[(o * gp.cin + i) * k.x * khw + (n % k.x) * khw + t] = sum_splits(e, elems, gp.splits);
}
