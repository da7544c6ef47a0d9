// Max pooling must not rely on a -inf start value or on `v != v` (see sentinels-reduce.test.ts):
// shaders/pool.wgsl starts from the first tap of the window and finds NaN by its bits; the first
// NaN of a window wins and stays. Checked against a float64 loop over each window.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from '../../src/index.js';
import { ready } from '../helpers.js';

beforeAll(ready);

const FMAX = 3.4028234663852886e38;

describe('max pooling without an infinite start value', () => {
  it('windows of -inf, of -FLT_MAX and with NaN give the first maximum, its index, and the first NaN', async () => {
    const H = 4;
    const W = 6;
    const planes = [
      Array.from({ length: H * W }, () => -Infinity),
      Array.from({ length: H * W }, () => -FMAX),
      Array.from({ length: H * W }, (_, i) => (i === 9 || i === 2 || i === 7 || i === 14 ? NaN : -1e38 - i * 1e36)),
    ];
    const x = tensor(planes.flat(), [1, planes.length, H, W]);
    const [out, idx] = F.maxPool2dWithIndices(x, [2, 3], { stride: [2, 3] });
    const o = await out.read();
    const ix = await idx.read();
    // reference: windows rows [2a, 2a+2) x cols [3b, 3b+3), scanned row by row
    let k = 0;
    for (const p of planes) {
      for (let a = 0; a < 2; a++) {
        for (let b = 0; b < 2; b++, k++) {
          let best = -1;
          for (let h = 2 * a; h < 2 * a + 2; h++) {
            for (let w = 3 * b; w < 3 * b + 3; w++) {
              const i = h * W + w;
              if (best < 0 || (!Number.isNaN(p[best]) && (p[i] > p[best] || Number.isNaN(p[i])))) best = i;
            }
          }
          expect(ix[k], `pool index, output ${k}`).toBe(best);
          const want = Math.fround(p[best]);
          expect(Number.isNaN(want) ? Number.isNaN(o[k]) : o[k] === want, `pool value, output ${k}: ${o[k]} vs ${want}`).toBe(true);
        }
      }
    }
  });
});

