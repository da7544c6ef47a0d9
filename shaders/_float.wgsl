// Shared (included, not a kernel): float tests that hold on implementations that assume no NaN or
// infinity (WGSL allows it, and fast-math compilers fold `x != x` to false): they look at the bits.

// The largest finite f32: a sentinel where a kernel needs "below (or above) every value".
const F32_MAX: f32 = 3.4028234663852886e38;

// (The parameter's name is one no kernel binds: reflection would count a binding named like it.)
fn is_nan(number: f32) -> bool {
  return (bitcast<u32>(number) & 0x7fffffffu) > 0x7f800000u;
}
