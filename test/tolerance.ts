// The tolerance policy, written once. GPU values (f32) are compared with float64 references as
//   |got - want| <= atol + rtol * |want|,  atol = rtol * scale,
// where `scale` is the largest |want| of the tensor (cancellation in sums makes small entries
// carry the absolute error of large ones). rtol by kind of computation:
//   - elementwise: 1e-5 (a few f32 ulps, transcendental functions included);
//   - a sum or dot product of K terms: 1e-5 * sqrt(K), at least 1e-5 (random rounding grows as sqrt(K));
//   - gradients compared with central finite differences of the float64 reference: as the forward
//     they mirror, plus 1e-6 absolute for the difference quotient's own error.
export interface Tolerance {
  rtol: number;
  atol: number;
}

export function elementwiseTol(): Tolerance {
  return { rtol: 1e-5, atol: 1e-5 };
}

export function reductionTol(K: number): Tolerance {
  const rtol = Math.max(1e-5, 1e-5 * Math.sqrt(K));
  return { rtol, atol: rtol };
}

export function gradTol(forward: Tolerance): Tolerance {
  return { rtol: forward.rtol, atol: forward.atol + 1e-6 };
}
