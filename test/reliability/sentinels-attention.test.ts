// Attention masks without infinities: a -inf (or <= -1e30) mask value is clamped to -1e30 in
// shaders/_attention.wgsl, so it gets weight 0 next to any unmasked key without -inf arithmetic, and
// a row whose every key is masked gives 0 with zero gradients (PyTorch's safe softmax, the math path
// of scaled_dot_product_attention since 2.5) instead of NaN. Checked against a float64 reference
// with one key split and with the keys split over launches; and softmax (what the composed variant
// runs) on rows of very negative values.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from '../../src/index.js';
import { ready } from '../helpers.js';

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
function refAttention(q: number[], k: number[], v: number[], mask: number[], Lq: number, Lk: number, D: number): number[] {
  const out = new Array<number>(Lq * D).fill(0);
  for (let i = 0; i < Lq; i++) {
    const s: number[] = [];
    for (let j = 0; j < Lk; j++) {
      let d = 0;
      for (let c = 0; c < D; c++) d += q[i * D + c] * k[j * D + c];
      s.push(mask[i * Lk + j] <= -1e30 ? NaN : d / Math.sqrt(D) + mask[i * Lk + j]);
    }
    const live = s.filter((x) => !Number.isNaN(x));
    if (!live.length) continue;
    const m = Math.max(...live);
    const p = s.map((x) => (Number.isNaN(x) ? 0 : Math.exp(x - m)));
    const z = p.reduce((a, b) => a + b, 0);
    for (let j = 0; j < Lk; j++) for (let c = 0; c < D; c++) out[i * D + c] += (p[j] / z) * v[j * D + c];
  }
  return out;
}

describe('attention masks without infinities', () => {
  for (const Lk of [24, 6000]) {
    it(`-inf and -1e30 masked keys get no weight, a fully masked row is 0 with zero gradients (Lk = ${Lk}${Lk > 1000 ? ', keys split over launches' : ''})`, async () => {
      const Lq = 5;
      const D = 16;
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
      const want = refAttention(qa, ka, va, mask.map(Math.fround), Lq, Lk, D);
      got.forEach((g, e) => expect(Math.abs(g - want[e]), `out[${Math.floor(e / D)}, ${e % D}]: ${g} vs ${want[e]}`).toBeLessThan(2e-5));
      const loss = F.sum(y);
      loss.backward();
      const dq = await q.grad!.read();
      expect(dq.every(Number.isFinite), 'dq finite').toBe(true);
      expect([...dq.slice(3 * D, 4 * D)], 'the fully masked row has no gradient').toEqual(new Array(D).fill(0));
      expect((await k.grad!.read()).every(Number.isFinite), 'dk finite').toBe(true);
      expect((await v.grad!.read()).every(Number.isFinite), 'dv finite').toBe(true);
      for (const t of [q, k, v, m, y, loss]) t.dispose();
    });
  }
});

