// Peak microkernels, the yardsticks of the benchmark suite.
//   fma_peak: each invocation runs 8 independent vec4 FMA chains for `iters` rounds
//             (64 flops per round per invocation), writing one value so nothing is optimised away.
//   copy_bandwidth: out[i] = in[i] over vec4s, a pure read+write stream.

struct Params {
  iters: u32,
  n: u32,
  seed: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 256u + gid.x;
  let s = params.seed + f32(i) * 1e-7;
  var a0 = vec4<f32>(s); var a1 = a0 + 0.1; var a2 = a0 + 0.2; var a3 = a0 + 0.3;
  var a4 = a0 + 0.4; var a5 = a0 + 0.5; var a6 = a0 + 0.6; var a7 = a0 + 0.7;
  let m = vec4<f32>(0.9999);
  let c = vec4<f32>(1e-4);
  for (var k = 0u; k < params.iters; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  if (i < params.n) { out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7; }
}

@compute @workgroup_size(256)
fn copy_bandwidth(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 256u + gid.x;
  if (i < params.n) { out[i] = src[i]; }
}
