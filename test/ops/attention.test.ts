// Scaled dot-product attention, fused and composed variants: forward vs the float64 reference and
// gradients to q, k, v and the mask vs its finite differences; Lq != Lk, lengths not divisible by
// the tiles, D from 16 to 128, broadcast masks and operands, strided (permuted) inputs; and the
// fused kernel's memory: it never allocates the Lq x Lk score matrix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, memoryStats, randn, runtime, tensor, type Tensor } from '../../src/index.js';
import { setAttentionVariant, type AttentionVariant } from '../../src/ops/attention.js';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import { attention } from '../reference/attention.js';
import { Arr } from '../reference/ndarray.js';
import { reductionTol } from '../tolerance.js';

// SwiftShader compiles each attention pipeline in seconds.
beforeAll(ready);
afterAll(() => setAttentionVariant(null));

const sdpa = (q: Tensor, k: Tensor, v: Tensor, m?: Tensor) => F.scaledDotProductAttention(q, k, v, { attnMask: m });

for (const variant of ['fused', 'composed'] as AttentionVariant[]) {
  describe(`scaledDotProductAttention (${variant})`, () => {
    beforeAll(() => setAttentionVariant(variant));

    it('Lq != Lk, lengths not divisible by the tile, D = 16', () =>
      checkOp({
        name: 'sdpa',
        shapes: [[2, 3, 37, 16], [2, 3, 53, 16], [2, 3, 53, 16]],
        gpu: (q, k, v) => sdpa(q, k, v),
        ref: (q, k, v) => attention(q, k, v, null),
        domains: [[-2, 2], [-2, 2], [-1, 1]],
        tol: reductionTol(53 + 16),
      }));

    it('D = 128 with a custom scale', () =>
      checkOp({
        name: 'sdpa D=128',
        shapes: [[1, 2, 19, 128], [1, 2, 23, 128], [1, 2, 23, 128]],
        gpu: (q, k, v) => F.scaledDotProductAttention(q, k, v, { scale: 0.3 }),
        ref: (q, k, v) => attention(q, k, v, null, 0.3),
        tol: reductionTol(23 + 128),
      }));

    it('an additive mask broadcast over batch and heads, with its gradient', () =>
      checkOp({
        name: 'sdpa mask',
        shapes: [[2, 2, 13, 32], [2, 2, 70, 32], [2, 2, 70, 32], [13, 70]],
        gpu: sdpa,
        ref: (q, k, v, m) => attention(q, k, v, m),
        domains: [[-1, 1], [-1, 1], [-1, 1], [-3, 3]],
        tol: reductionTol(70 + 32),
      }));

    it('a mask broadcast over query rows and heads, 3-d operands', () =>
      checkOp({
        name: 'sdpa mask [B,1,Lk]',
        shapes: [[3, 7, 64], [3, 41, 64], [3, 41, 64], [3, 1, 41]],
        gpu: sdpa,
        ref: (q, k, v, m) => attention(q, k, v, m),
        domains: [[-1, 1], [-1, 1], [-1, 1], [-2, 2]],
        tol: reductionTol(41 + 64),
      }));

    it('k and v broadcast over heads; permuted [B, L, H, D] views', () =>
      checkOp({
        name: 'sdpa views',
        shapes: [[2, 29, 3, 16], [2, 1, 31, 16], [2, 1, 31, 16]],
        prepare: (t, i) => (i === 0 ? t.permute(0, 2, 1, 3) : t),
        gpu: (q, k, v) => sdpa(q, k, v),
        ref: (q, k, v) => {
          const [B, L, H, D] = q.shape;
          const qp = Arr.zeros([B, H, L, D]);
          for (let b = 0; b < B; b++)
            for (let l = 0; l < L; l++)
              for (let h = 0; h < H; h++)
                for (let d = 0; d < D; d++) qp.data[((b * H + h) * L + l) * D + d] = q.data[((b * L + l) * H + h) * D + d];
          return attention(qp, k, v, null);
        },
        tol: reductionTol(31 + 16),
      }));
  });
}

describe('scaledDotProductAttention (fused) special cases', () => {
  beforeAll(() => setAttentionVariant('fused'));

  it('a -inf mask entry removes that key', () =>
    checkOp({
      name: 'sdpa -inf',
      shapes: [[1, 1, 5, 16], [1, 1, 9, 16], [1, 1, 9, 16]],
      gpu: (q, k, v) => {
        const m = new Float32Array(5 * 9);
        for (let i = 0; i < 5; i++) m[i * 9 + ((i * 2) % 9)] = -Infinity;
        return sdpa(q, k, v, tensor(m, [5, 9]));
      },
      ref: (q, k, v) => {
        const m = Arr.zeros([5, 9]);
        for (let i = 0; i < 5; i++) m.data[i * 9 + ((i * 2) % 9)] = -Infinity;
        return attention(q, k, v, m);
      },
      gradInputs: [],
      tol: reductionTol(9 + 16),
    }));

  it('does not allocate the Lq x Lk score matrix (1 x 1024 x 1024 x 16)', async () => {
    const L = 1024;
    const q = randn([1, 1, L, 16]);
    const k = randn([1, 1, L, 16]);
    const v = randn([1, 1, L, 16]);
    await q.read();
    const before = memoryStats().liveBytes;
    runtime().pool.peakLiveBytes = before; // measure the peak of this call alone
    const o = sdpa(q, k, v);
    await o.read();
    // output + row statistics only: far under one Lq x Lk f32 matrix (4 MiB)
    expect(memoryStats().peakBytes - before).toBeLessThan(L * L);
    expect(memoryStats().liveBytes - before).toBeLessThanOrEqual(L * 16 * 4 + L * 8 + 1024);
    for (const t of [q, k, v, o]) t.dispose();
  });

  it('refuses mismatched head dims and non-broadcasting masks with the shapes', () => {
    const q = randn([2, 5, 16]);
    const k = randn([2, 6, 8]);
    expect(() => sdpa(q, k, k)).toThrow(/head dim.*\[2, 5, 16\]|\[2, 5, 16\].*head dim/);
    const k2 = randn([2, 6, 16]);
    expect(() => sdpa(q, k2, k2, randn([4, 6]))).toThrow(/broadcast/);
  });
});

describe('attention memory', () => {
  for (const variant of ['fused', 'composed'] as AttentionVariant[]) {
    it(`a training step with a strided decomposed bias leaves nothing behind (${variant})`, async () => {
      setAttentionVariant(variant);
      const [kh, kw] = [3, 2];
      const leaves = [randn([2, 5, 8]), randn([2, 6, 8]), randn([2, 6, 8]), randn([2, 5, kh + kw + 2])];
      for (const t of leaves) t.requiresGrad = true;
      const [q, k, v, relBig] = leaves;
      await expectStepLeavesNothing(async () => {
        // rel at an offset with a row stride: the fused kernel reads a dense copy
        const rel = relBig.narrow(-1, 1, kh + kw);
        const o = F.scaledDotProductAttention(q, k, v, { decomposedBias: { rel, kh, kw } });
        const loss = o.sum();
        loss.backward();
        for (const t of leaves) await t.grad!.read();
        for (const t of [rel, o, loss]) t.dispose();
        for (const t of leaves) t.zeroGrad();
      });
      for (const t of leaves) {
        expect(t.graphUses).toBe(0);
        t.dispose();
      }
    });
  }
});
