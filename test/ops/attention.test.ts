// Scaled dot-product attention, fused and composed variants: forward vs the float64 reference and
// gradients to q, k, v and the mask vs its finite differences; Lq != Lk, lengths not divisible by
// the tiles, D from 16 to 128, broadcast masks and operands, strided (permuted) inputs; the fused
// kernel's key and query splits (forced many ways by a small loop budget, the forced variant's
// `budget` param: masks, -inf over a whole split, the decomposed bias, head dims not divisible by 4)
// and its split plan; the 'attention' family's default rule; and the fused kernel's memory: it never
// allocates the Lq x Lk score matrix. Long rows: attention-long.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, memoryStats, randn, resetPeakMemory, runtime, tensor, type Tensor } from '../../src/index.js';
import { kernelFamily, setKernelVariant } from '../../src/gpu/variants.js';
import { attentionLoopPasses, attentionSplit } from '../../src/ops/attention.js';
import { LOOP_BUDGET } from '../../src/ops/loop-budget.js';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import { attention, decomposedAttention } from '../reference/attention.js';
import { Arr } from '../reference/ndarray.js';
import { reductionTol } from '../tolerance.js';

// SwiftShader compiles each attention pipeline in seconds.
beforeAll(ready);
afterAll(() => setKernelVariant('attention', null));

const sdpa = (q: Tensor, k: Tensor, v: Tensor, m?: Tensor) => F.scaledDotProductAttention(q, k, v, { attnMask: m });

for (const variant of ['fused', 'composed']) {
  describe(`scaledDotProductAttention (${variant})`, () => {
    beforeAll(() => setKernelVariant('attention', variant));

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
  beforeAll(() => setKernelVariant('attention', 'fused'));

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
    resetPeakMemory(); // measure the peak of this call alone
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

describe('scaledDotProductAttention (fused) split many ways by a small loop budget', () => {
  afterAll(() => setKernelVariant('attention', null));
  // At D = 16 (tiles of 64 keys and 64 queries) a budget of 1200 leaves one tile per split.
  const budget = (n: number) => () => setKernelVariant('attention', 'fused', { budget: n });

  it('4 key splits and 3 query splits, a mask with its gradient', () => {
    budget(1200)();
    expect(attentionSplit('forward', 200, 64, 16, 0, 1200)).toEqual({ splits: 4, len: 64 });
    expect(attentionSplit('dkdv', 150, 64, 16, 0, 1200)).toEqual({ splits: 3, len: 64 });
    return checkOp({
      name: 'sdpa split mask',
      shapes: [[1, 3, 150, 16], [1, 3, 200, 16], [1, 3, 200, 16], [150, 200]],
      gpu: sdpa,
      ref: (q, k, v, m) => attention(q, k, v, m),
      domains: [[-2, 2], [-2, 2], [-1, 1], [-3, 3]],
      tol: reductionTol(200 + 16),
    });
  });

  it('-inf over every key of a split (and all keys but one)', () => {
    budget(1200)();
    const [Lq, Lk] = [9, 200];
    // row i loses the keys of split i % 4; row 0 keeps only key 199
    const masked = (i: number, j: number) => (i === 0 ? j !== 199 : Math.floor(j / 64) === i % 4);
    return checkOp({
      name: 'sdpa split -inf',
      shapes: [[1, 2, Lq, 16], [1, 2, Lk, 16], [1, 2, Lk, 16]],
      gpu: (q, k, v) => {
        const m = new Float32Array(Lq * Lk);
        for (let i = 0; i < Lq; i++) for (let j = 0; j < Lk; j++) if (masked(i, j)) m[i * Lk + j] = -Infinity;
        return sdpa(q, k, v, tensor(m, [Lq, Lk]));
      },
      ref: (q, k, v) => {
        const m = Arr.zeros([Lq, Lk]);
        for (let i = 0; i < Lq; i++) for (let j = 0; j < Lk; j++) if (masked(i, j)) m.data[i * Lk + j] = -Infinity;
        return attention(q, k, v, m);
      },
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(Lk + 16),
    });
  });

  it('the decomposed bias and a mask, gradients to both (d(rel) summed over key splits)', () => {
    budget(1200)();
    const [kh, kw] = [10, 20];
    return checkOp({
      name: 'sdpa split rel',
      shapes: [[2, 2, 70, 16], [2, 2, kh * kw, 16], [2, 2, kh * kw, 16], [2, 2, 70, kh + kw], [70, kh * kw]],
      gpu: (q, k, v, rel, m) => F.scaledDotProductAttention(q, k, v, { attnMask: m, decomposedBias: { rel, kh, kw } }),
      ref: (q, k, v, rel, m) => decomposedAttention(q, k, v, rel, kh, kw, m),
      domains: [[-2, 2], [-2, 2], [-1, 1], [-1, 1], [-2, 2]],
      tol: reductionTol(kh * kw + 16),
    });
  });

  it('D = 128 (4 key splits of 2 tiles, 2 query splits) and D = 10 (rows padded to vec4s)', async () => {
    budget(2500)();
    expect(attentionSplit('forward', 100, 16, 128, 0, 2500)).toEqual({ splits: 4, len: 32 });
    await checkOp({
      name: 'sdpa split D=128',
      shapes: [[1, 2, 45, 128], [1, 2, 100, 128], [1, 2, 100, 128]],
      gpu: (q, k, v) => sdpa(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      tol: reductionTol(100 + 128),
    });
    budget(1000)();
    await checkOp({
      name: 'sdpa split D=10',
      shapes: [[2, 2, 70, 10], [2, 2, 150, 10], [2, 2, 150, 10]],
      gpu: (q, k, v) => sdpa(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(150 + 10),
    });
  });

  it('k and v broadcast over heads; permuted [B, L, H, D] q', () => {
    budget(1200)();
    return checkOp({
      name: 'sdpa split views',
      shapes: [[2, 29, 3, 16], [2, 1, 200, 16], [2, 1, 200, 16]],
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
      tol: reductionTol(200 + 16),
    });
  });

  it('pipelines specialised to the head dim (as on GPUs), split', () => {
    setKernelVariant('attention', 'fused-specialised', { budget: 1200 });
    return checkOp({
      name: 'sdpa split specialised',
      shapes: [[2, 2, 70, 16], [2, 2, 150, 16], [2, 2, 150, 16]],
      gpu: (q, k, v) => sdpa(q, k, v),
      ref: (q, k, v) => attention(q, k, v, null),
      domains: [[-2, 2], [-2, 2], [-1, 1]],
      tol: reductionTol(150 + 16),
    });
  });
});

describe('the fused attention split plan', () => {
  it('keeps every invocation within the loop budget, in balanced splits covering the rows', () => {
    for (const D of [1, 3, 8, 16, 32, 64, 100, 128]) {
      const D4 = Math.ceil(D / 4);
      const tkv = Math.min(64, Math.floor(512 / D4));
      const tq = Math.min(64, Math.floor(256 / D4));
      for (const L of [1, 7, 64, 196, 480, 1900, 4096, 16384, 100000]) {
        for (const [kind, T, extra] of [['forward', tkv, 0], ['dq', tkv, 0], ['dkdv', tq, 0], ['dq', tkv, 128]] as const) {
          const p = attentionSplit(kind, L, T, D, extra);
          const what = `${kind} L ${L} T ${T} D ${D}: ${JSON.stringify(p)}`;
          expect(p.len % T, what).toBe(0);
          expect(p.splits * p.len, what).toBeGreaterThanOrEqual(L);
          expect((p.splits - 1) * p.len, what).toBeLessThan(L);
          expect(attentionLoopPasses(kind, p.len / T, T, D, extra), what).toBeLessThanOrEqual(LOOP_BUDGET);
          expect(2 * (p.splits + 1), what).toBeLessThanOrEqual(LOOP_BUDGET);
        }
      }
    }
    // short rows take one split; SAM's global blocks (4096 keys at D = 64) take 10 of 416 keys
    expect(attentionSplit('forward', 1024, 64, 16).splits).toBe(1);
    expect(attentionSplit('forward', 4096, 32, 64)).toEqual({ splits: 10, len: 416 });
  });
});

describe('the attention kernel family', () => {
  afterAll(() => setKernelVariant('attention', null));
  it('defaults by adapter kind and head dim; a forced budget reaches the op', async () => {
    const family = kernelFamily('attention');
    expect(family.variants.map((v) => v.name)).toEqual(['fused', 'fused-specialised', 'composed']);
    expect(family.defaultFor({ D: 16 })).toBe(runtime().adapterKind === 'cpu' ? 'fused' : 'fused-specialised');
    expect(family.defaultFor({ D: 129 })).toBe('composed');
    const q = randn([1, 1, 5, 16]);
    const k = randn([1, 1, 200, 16]);
    const dispatches = (fn: () => Tensor) => {
      const before = runtime().dispatches;
      fn().dispose();
      return runtime().dispatches - before;
    };
    setKernelVariant('attention', 'fused');
    expect(dispatches(() => sdpa(q, k, k)), 'one forward launch').toBe(1);
    setKernelVariant('attention', 'fused', { budget: 1200 });
    expect(dispatches(() => sdpa(q, k, k)), 'split forward and its merge').toBe(2);
    await runtime().sync();
    for (const t of [q, k]) t.dispose();
  });
});

describe('attention memory', () => {
  for (const variant of ['fused', 'composed']) {
    it(`a training step with a strided decomposed bias leaves nothing behind (${variant})`, async () => {
      setKernelVariant('attention', variant);
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
