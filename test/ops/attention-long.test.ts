// The fused attention at the lengths of SAM's global blocks and mask decoder (thousands of keys or
// queries), forward vs the float64 reference and gradients to q, k, v and the bias vs its finite
// differences. Few queries (or few keys) keep the reference cheap. These lengths once came out wrong
// on llvmpipe with no error: its compiler leaves an invocation's loops after 65,535 iterations in
// total, and one invocation walked all the keys (forward, dq) or all the queries (dk, dv).
import { afterAll, beforeAll, describe, it } from 'vitest';
import { F } from '../../src/index.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { checkOp, ready } from '../helpers.js';
import { attention, decomposedAttention } from '../reference/attention.js';
import { reductionTol } from '../tolerance.js';

beforeAll(async () => {
  await ready();
  setKernelVariant('attention', 'fused');
});
afterAll(() => setKernelVariant('attention', null));

describe('scaledDotProductAttention (fused) over long rows', () => {
  it('4096 keys at head dim 64, 3 queries', () =>
    checkOp({
      name: 'sdpa Lk=4096 D=64',
      shapes: [[1, 2, 3, 64], [1, 2, 4096, 64], [1, 2, 4096, 64]],
      gpu: (q, k, v) => F.scaledDotProductAttention(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(4096 + 64),
    }));

  it('2000 keys at head dim 16 with an additive mask, with its gradient', () =>
    checkOp({
      name: 'sdpa Lk=2000 D=16 mask',
      shapes: [[2, 2, 5, 16], [2, 2, 2000, 16], [2, 2, 2000, 16], [5, 2000]],
      gpu: (q, k, v, m) => F.scaledDotProductAttention(q, k, v, { attnMask: m }),
      ref: (q, k, v, m) => attention(q, k, v, m),
      domains: [[-2, 2], [-2, 2], [-1, 1], [-3, 3]],
      tol: reductionTol(2000 + 16),
    }));

  it("SAM's decoder, token to image: 7 tokens over 64x64 image positions, 8 heads of 16", () =>
    checkOp({
      name: 'sdpa token-to-image',
      shapes: [[1, 8, 7, 16], [1, 8, 4096, 16], [1, 8, 4096, 16]],
      gpu: (q, k, v) => F.scaledDotProductAttention(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(4096 + 16),
    }));

  it("SAM's decoder, image to token: 64x64 image positions over 7 tokens, 8 heads of 16", () =>
    checkOp({
      name: 'sdpa image-to-token',
      shapes: [[1, 8, 4096, 16], [1, 8, 7, 16], [1, 8, 7, 16]],
      gpu: (q, k, v) => F.scaledDotProductAttention(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(4096 + 16),
    }));

  it("SAM's global block: 12 heads of 64 over 64x64 keys with the decomposed rel-pos bias, 2 queries", () => {
    const [kh, kw] = [64, 64];
    return checkOp({
      name: 'sdpa SAM global',
      shapes: [[1, 12, 2, 64], [1, 12, kh * kw, 64], [1, 12, kh * kw, 64], [1, 12, 2, kh + kw]],
      gpu: (q, k, v, rel) => F.scaledDotProductAttention(q, k, v, { decomposedBias: { rel, kh, kw } }),
      ref: (q, k, v, rel) => decomposedAttention(q, k, v, rel, kh, kw),
      domains: [[-2, 2], [-2, 2], [-1, 1], [-1, 1]],
      tol: reductionTol(kh * kw + 64),
    });
  });
});
