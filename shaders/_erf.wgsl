// Shared (included, not a kernel): erf for the exact GELU, which WGSL lacks as a builtin.

const SQRT1_2: f32 = 0.7071067811865476;

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
fn erf_f32(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}
