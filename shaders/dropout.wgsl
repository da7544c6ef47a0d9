// Dropout: out[i] = keep(i) ? src[i] * scale : 0, with keep(i) = hash(seed, i) >= threshold
// (threshold = p * 2^32, scale = 1 / (1 - p)). The mask is a pure function of (seed, i), so the
// backward reruns this kernel on dy with the same seed instead of storing a mask.
// #include _strided

struct Params {
  n: u32,
  seed: u32,
  threshold: u32,
  src_offset: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// lowbias32 (Wellons): a well-mixed 32-bit integer hash.
fn hash32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i >= params.n) { return; }
  let keep = hash32(hash32(params.seed) ^ i) >= params.threshold;
  out[i] = select(0.0, src[params.src_offset + i] * params.scale, keep);
}
