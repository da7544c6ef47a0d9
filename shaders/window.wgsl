// SAM's window partition and unpartition over channels-last images, one invocation per output element.
//   window_partition:   x [B, H, W, C] (any strides) -> out [B*nh*nw, ws, ws, C] contiguous, with
//                out[(b*nh + wr)*nw + wc, r, c, ch] = x[b, wr*ws + r, wc*ws + c, ch], or 0 where that
//                position is padding (row >= H or column >= W; nh = ceil(H/ws), nw = ceil(W/ws)).
//   window_unpartition: windows [B*nh*nw, ws, ws, C] (any strides) -> out [B, H, W, C] contiguous, the
//                inverse read that drops the padded positions.
// Each is the other's backward (the gradient of the padding is dropped, resp. zero).
// #include _strided

struct Params {
  n: u32,
  B: u32,
  H: u32,
  W: u32,
  C: u32,
  ws: u32,
  nh: u32,
  nw: u32,
  strides: vec4<u32>,
  offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn window_partition(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 256u);
  if (o >= params.n) { return; }
  let ws = params.ws;
  let ch = o % params.C;
  let c = (o / params.C) % ws;
  let r = (o / (params.C * ws)) % ws;
  let w = o / (params.C * ws * ws);
  let wc = w % params.nw;
  let wr = (w / params.nw) % params.nh;
  let b = w / (params.nw * params.nh);
  let y = wr * ws + r;
  let xx = wc * ws + c;
  var v = 0.0;
  if (y < params.H && xx < params.W) {
    let s = params.strides;
    v = x[params.offset + b * s.x + y * s.y + xx * s.z + ch * s.w];
  }
  out[o] = v;
}

@compute @workgroup_size(256)
fn window_unpartition(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = linear_id(wid, nwg, lid, 256u);
  if (o >= params.n) { return; }
  let ws = params.ws;
  let ch = o % params.C;
  let xx = (o / params.C) % params.W;
  let y = (o / (params.C * params.W)) % params.H;
  let b = o / (params.C * params.W * params.H);
  let w = (b * params.nh + y / ws) * params.nw + xx / ws;
  let s = params.strides;
  out[o] = x[params.offset + w * s.x + (y % ws) * s.y + (xx % ws) * s.z + ch * s.w];
}
