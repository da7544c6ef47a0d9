// Warping a volume by a dense displacement field (data augmentation; no backward):
//   out[n, c, z, y, x] = x_in[n, c] sampled at (z + f[n, 0, z, y, x], y + f[n, 1, ...], x + f[n, 2, ...])
// in voxel units of x_in, whose spatial size may differ from the field's (the output takes the
// field's). MODE 1 trilinear: the 8 neighbours of the clamped position weighted by their distances;
// MODE 0 nearest: the neighbour at the rounded position (labels). Positions outside x_in are clamped
// to its border (border padding), so a warp never pulls in values that are not in the volume.
// One invocation per output element.
// #include _strided

override MODE: u32 = 1u;

struct Params {
  in_size: vec4<u32>,   // D, H, W of x_in
  out_size: vec4<u32>,  // D, H, W of the field and the output
  channels: u32,
  n: u32,               // output elements
  x_offset: u32,
  f_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x_in: array<f32>;
@group(0) @binding(2) var<storage, read> field: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn warp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_id(wid, nwg, lid, 256u);
  if (idx >= params.n) { return; }
  let os = params.out_size.xyz;
  let ovol = os.x * os.y * os.z;
  let o = idx % ovol;
  let c = (idx / ovol) % params.channels;
  let b = idx / (ovol * params.channels);
  let x = o % os.z;
  let y = (o / os.z) % os.y;
  let z = o / (os.z * os.y);
  let fb = params.f_offset + b * 3u * ovol + o;
  let hi = vec3<f32>(params.in_size.xyz - 1u);
  let pos = clamp(vec3<f32>(f32(z), f32(y), f32(x)) + vec3<f32>(field[fb], field[fb + ovol], field[fb + 2u * ovol]), vec3<f32>(0.0), hi);
  let is = params.in_size.xyz;
  let base = params.x_offset + (b * params.channels + c) * is.x * is.y * is.z;
  if (MODE == 0u) {
    let q = vec3<u32>(round(pos));
    out[idx] = x_in[base + (q.x * is.y + q.y) * is.z + q.z];
    return;
  }
  let p0 = vec3<u32>(floor(pos));
  let p1 = min(p0 + 1u, params.in_size.xyz - 1u);
  let t = pos - vec3<f32>(p0);
  var acc = 0.0;
  for (var i = 0u; i < 8u; i++) {
    let hi_bit = vec3<bool>((i & 4u) != 0u, (i & 2u) != 0u, (i & 1u) != 0u);
    let q = select(p0, p1, hi_bit);
    let w = select(1.0 - t, t, hi_bit);
    acc += w.x * w.y * w.z * x_in[base + (q.x * is.y + q.y) * is.z + q.z];
  }
  out[idx] = acc;
}
