// SAM's decomposed relative position: get_rel_pos (with and without resampling the table),
// add_decomposed_rel_pos, and attention with the rel-pos bias (fused and composed), forward vs the
// float64 reference and gradients to q, k, v and both tables vs its finite differences.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randn, type Tensor } from '../../src/index.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { addDecomposedRelPos, getRelPos, relPosAttention } from '../../src/ops/rel-pos.js';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import * as ref from '../reference/attention.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);
afterAll(() => setKernelVariant('attention', null));

describe('getRelPos', () => {
  const cases: [number, number, number][] = [
    [4, 4, 7], // table already 2 max(q, k) - 1 rows: a pure lookup
    [3, 5, 7], // q != k grid, table shorter than 9 rows: upsampled
    [5, 3, 13], // table longer than 9 rows: downsampled
  ];
  for (const [qs, ks, L] of cases) {
    it(`q ${qs}, k ${ks}, table of ${L} rows`, () =>
      checkOp({
        name: 'getRelPos',
        shapes: [[L, 6]],
        gpu: (t) => getRelPos(qs, ks, t),
        ref: (t) => ref.getRelPos(qs, ks, t),
      }));
  }
});

describe('addDecomposedRelPos', () => {
  it('adds rel_h and rel_w to [B, qh*qw, kh*kw] scores, gradients to scores, q and tables', () =>
    checkOp({
      name: 'addDecomposedRelPos',
      shapes: [[2, 12, 10], [2, 12, 8], [7, 8], [7, 8]],
      gpu: (a, q, th, tw) => addDecomposedRelPos(a, q, th, tw, [3, 4], [5, 2]),
      ref: (a, q, th, tw) => ref.addDecomposedRelPos(a, q, th, tw, [3, 4], [5, 2]),
      tol: reductionTol(8),
    }));
});

for (const variant of ['fused', 'composed']) {
  describe(`relPosAttention (${variant})`, () => {
    beforeAll(() => setKernelVariant('attention', variant));
    const attn = (qs: [number, number], ks: [number, number], scale: number) => (q: Tensor, k: Tensor, v: Tensor, th: Tensor, tw: Tensor) =>
      relPosAttention(q, k, v, th, tw, qs, ks, { scale });

    it('q grid 3x4, k grid 5x2, resampled height table', () =>
      checkOp({
        name: 'relPosAttention',
        shapes: [[2, 12, 8], [2, 10, 8], [2, 10, 8], [7, 8], [7, 8]],
        gpu: attn([3, 4], [5, 2], 0.35),
        ref: (q, k, v, th, tw) => ref.relPosAttention(q, k, v, th, tw, [3, 4], [5, 2], 0.35),
        tol: reductionTol(10 + 8),
      }));

    it("SAM's windowed form: 7x7 tokens, tables of 13 rows, 16 channels", () =>
      checkOp({
        name: 'relPosAttention 7x7',
        shapes: [[2, 49, 16], [2, 49, 16], [2, 49, 16], [13, 16], [13, 16]],
        gpu: attn([7, 7], [7, 7], 0.25),
        ref: (q, k, v, th, tw) => ref.relPosAttention(q, k, v, th, tw, [7, 7], [7, 7], 0.25),
        tol: reductionTol(49 + 16),
      }));
  });
}

describe('relPosAttention (fused, pipelines specialised to the head dim)', () => {
  beforeAll(() => setKernelVariant('attention', 'fused-specialised'));
  it('with an additive mask as well: gradients to q, k, v, both tables and the mask', () =>
    checkOp({
      name: 'relPosAttention+mask (specialised)',
      shapes: [[2, 12, 16], [2, 10, 16], [2, 10, 16], [7, 16], [7, 16], [12, 10]],
      gpu: (q, k, v, th, tw, m) => relPosAttention(q, k, v, th, tw, [3, 4], [5, 2], { scale: 0.25, attnMask: m }),
      ref: (q, k, v, th, tw, m) => ref.relPosAttention(q, k, v, th, tw, [3, 4], [5, 2], 0.25, m),
      tol: reductionTol(10 + 16),
    }));
});

describe('rel-pos memory', () => {
  for (const variant of ['fused', 'composed']) {
    it(`a training step through relPosAttention and addDecomposedRelPos leaves nothing behind (${variant})`, async () => {
      setKernelVariant('attention', variant);
      const leaves = [randn([2, 12, 8]), randn([2, 10, 8]), randn([2, 10, 8]), randn([7, 8]), randn([7, 8]), randn([2, 12, 10])];
      for (const t of leaves) t.requiresGrad = true;
      const [q, k, v, th, tw, scores] = leaves;
      await expectStepLeavesNothing(async () => {
        const o = relPosAttention(q, k, v, th, tw, [3, 4], [5, 2], { scale: 0.35 });
        const s = addDecomposedRelPos(scores, q, th, tw, [3, 4], [5, 2]);
        const lo = o.sum();
        const ls = s.sum();
        const loss = lo.add(ls);
        loss.backward();
        for (const t of leaves) await t.grad!.read();
        for (const t of [o, s, lo, ls, loss]) t.dispose();
        for (const t of leaves) t.zeroGrad();
      });
      for (const t of leaves) {
        expect(t.graphUses).toBe(0);
        t.dispose();
      }
    });
  }
});
