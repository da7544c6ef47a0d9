// Attention masks without infinities: a -inf (or <= -1e30) mask value is clamped to -1e30 (in
// shaders/_attention.wgsl for the fused kernels, by a clamp in the composed variant), so it gets
// weight 0 next to any unmasked key without -inf arithmetic, and a row whose every key is masked
// gives 0 with zero gradients (PyTorch's safe softmax, the math path of scaled_dot_product_attention
// since 2.5) instead of NaN. Checked against a float64 reference, forward and the gradients of q, k
// and v against its finite differences, for the fused kernel with one key split and with the keys
// split over launches, and for the composed variant (head dims over 128, D = 160); and softmax on
// rows of very negative values.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from '../../src/index.js';
import { attentionKernels } from '../../src/ops/attention.js';
import { expectClose, ready } from '../helpers.js';
import { finiteDifference, sampleIndices } from '../reference/gradcheck.js';
import { Arr } from '../reference/ndarray.js';
import { gradTol, reductionTol } from '../tolerance.js';

beforeAll(ready);

const FMAX = 3.4028234663852886e38;

describe('softmax at the edges of the float range', () => {
  it('a row of equal very negative values is uniform; -inf entries get 0; very negative finite rows match float64', async () => {
    const n = 7;
    const rows = [
      Array.from({ length: n }, () => -3e38),
      Array.from({ length: n }, () => -FMAX),
      Array.from({ length: n }, (_, i) => (i % 2 ? -Infinity : Math.sin(i))),
      Array.from({ length: n }, (_, i) => -1e38 + i * 1e31), // distinct after rounding to f32
    ].map((r) => r.map(Math.fround));
    const x = tensor(rows.flat(), [rows.length, n]);
    const got = await F.softmax(x, -1).read();
    rows.forEach((r, k) => {
      const m = Math.max(...r);
      const e = r.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, i) => expect(Math.abs(got[k * n + i] - v / s), `softmax row ${k}, ${i}: ${got[k * n + i]} vs ${v / s}`).toBeLessThan(1e-6));
    });
  });
});

/** Safe-softmax attention in float64: keys with mask <= -1e30 (or -inf) are left out; a row with none left gives 0. */
function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, mask: ArrayLike<number>, Lq: number, Lk: number, D: number): Float64Array {
  const out = new Float64Array(Lq * D);
  const s = new Float64Array(Lk);
  for (let i = 0; i < Lq; i++) {
    let m = -Infinity;
    for (let j = 0; j < Lk; j++) {
      if (mask[i * Lk + j] <= -1e30) {
        s[j] = NaN;
        continue;
      }
      let d = 0;
      for (let c = 0; c < D; c++) d += q[i * D + c] * k[j * D + c];
      s[j] = d / Math.sqrt(D) + mask[i * Lk + j];
      m = Math.max(m, s[j]);
    }
    if (m === -Infinity) continue;
    let z = 0;
    for (let j = 0; j < Lk; j++) z += s[j] = Number.isNaN(s[j]) ? 0 : Math.exp(s[j] - m);
    for (let j = 0; j < Lk; j++) for (let c = 0; c < D; c++) out[i * D + c] += (s[j] / z) * v[j * D + c];
  }
  return out;
}

describe('attention masks without infinities', () => {
  const cases = [
    { Lk: 24, D: 16, note: '' },
    { Lk: 6000, D: 16, note: ', keys split over launches' },
    { Lk: 24, D: 160, note: ', the composed variant (head dims over 128)' },
  ];
  for (const { Lk, D, note } of cases) {
    it(`-inf and -1e30 masked keys get no weight, a fully masked row is 0 with zero gradients (Lk = ${Lk}, D = ${D}${note})`, async () => {
      const variant = attentionKernels.pick({ D }).variant.name;
      if (D > 128) expect(variant, `the variant for head dim ${D}`).toBe('composed');
      else expect(variant, `the variant for head dim ${D}`).not.toBe('composed');
      const Lq = 5;
      const r = (i: number, s: number) => Math.sin(i * 12.9898 + s) * 0.8;
      const qa = Array.from({ length: Lq * D }, (_, i) => r(i, 1));
      const ka = Array.from({ length: Lk * D }, (_, i) => r(i, 2));
      const va = Array.from({ length: Lk * D }, (_, i) => r(i, 3));
      // row 0: no mask; row 1: every other key -inf; row 2: all but key 3 masked with -1e30;
      // row 3: every key -inf (fully masked); row 4: finite additive bias
      const mask = Array.from({ length: Lq * Lk }, (_, e) => {
        const i = Math.floor(e / Lk);
        const j = e % Lk;
        return [0, j % 2 ? -Infinity : 0, j === 3 ? 0 : -1e30, -Infinity, Math.cos(j) * 2][i];
      });
      const q = tensor(qa, [1, 1, Lq, D], { requiresGrad: true });
      const k = tensor(ka, [1, 1, Lk, D], { requiresGrad: true });
      const v = tensor(va, [1, 1, Lk, D], { requiresGrad: true });
      const m = tensor(mask, [1, 1, Lq, Lk]);
      const y = F.scaledDotProductAttention(q, k, v, { attnMask: m });
      const got = await y.read();
      const mask32 = Float64Array.from(mask, Math.fround);
      const f32 = (a: number[]) => a.map(Math.fround);
      const ref = (a: Arr, b: Arr, c: Arr) => new Arr(refAttention(a.data, b.data, c.data, mask32, Lq, Lk, D), [Lq, D]);
      const xs = [new Arr(Float64Array.from(f32(qa)), [Lq, D]), new Arr(Float64Array.from(f32(ka)), [Lk, D]), new Arr(Float64Array.from(f32(va)), [Lk, D])];
      const want = ref(xs[0], xs[1], xs[2]).data;
      got.forEach((g, e) => expect(Math.abs(g - want[e]), `out[${Math.floor(e / D)}, ${e % D}]: ${g} vs ${want[e]}`).toBeLessThan(2e-5));
      expect(Array.from(got.slice(3 * D, 4 * D), Math.abs), 'the fully masked row is 0').toEqual(new Array(D).fill(0));
      // gradients of sum(y * cot) against central differences of the float64 reference
      const cot = new Arr(Float64Array.from({ length: Lq * D }, (_, i) => Math.fround(Math.cos(i * 0.7))), [Lq, D]);
      const g = tensor(Float32Array.from(cot.data), [1, 1, Lq, D]);
      y.backward(g);
      const tol = gradTol(reductionTol(Lk + D));
      for (const [i, t] of [q, k, v].entries()) {
        const all = await t.grad!.read();
        expect(all.every(Number.isFinite), `d${'qkv'[i]} finite`).toBe(true);
        const idx = sampleIndices(xs[i].size, Lk > 1000 ? 8 : 40); // (each difference runs the reference twice)
        expectClose(idx.map((e) => all[e]), finiteDifference(ref, xs, cot, i, idx), tol, `d${'qkv'[i]} (Lk ${Lk}, D ${D})`, idx);
      }
      expect(Array.from((await q.grad!.read()).slice(3 * D, 4 * D), Math.abs), 'the fully masked row has no gradient').toEqual(new Array(D).fill(0));
      for (const t of [q, k, v, m, y, g]) (t.grad?.dispose(), t.dispose());
    });
  }
});
