// Shared helpers (included, not a kernel): index arithmetic for tensors of up to 8 dims whose
// shape and strides travel in uniforms as array<vec4<u32>, 2>, and the 1D invocation index of a
// dispatch spread over x and y (Runtime.grid).

fn dim8(v: array<vec4<u32>, 2>, i: u32) -> u32 {
  return v[i / 4u][i % 4u];
}

// Element offset of flat (row-major) index `flat` of `shape` under `strides`.
fn strided_offset(flat: u32, ndim: u32, shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2>) -> u32 {
  var rem = flat;
  var off = 0u;
  for (var d = i32(ndim) - 1; d >= 0; d--) {
    let n = dim8(shape, u32(d));
    off += (rem % n) * dim8(strides, u32(d));
    rem /= n;
  }
  return off;
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg_size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * wg_size + lid;
}
