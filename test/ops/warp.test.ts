// F.warp: trilinear and nearest sampling at displaced positions vs the float64 reference, with an
// input larger than the output (a margin), displacements past the border (clamped), batch and
// channels; refuses inputs that need gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, rand, tensor } from '../../src/index.js';
import { expectClose, ready } from '../helpers.js';
import { elementwiseTol } from '../tolerance.js';
import { warpRef } from '../reference/warp.js';

beforeAll(ready);

function randomArray(n: number, lo: number, hi: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + (hi - lo) * (s / 2147483648);
  });
}

describe('warp', () => {
  const N = 2;
  const C = 2;
  const inSize = [6, 7, 9];
  const outSize = [4, 5, 6];
  const ivol = inSize[0] * inSize[1] * inSize[2];
  const ovol = outSize[0] * outSize[1] * outSize[2];
  const x = randomArray(N * C * ivol, -1, 1, 3);
  // displacements from -2.5 to 4.5 voxels: some positions fall outside the input (clamped)
  const field = randomArray(N * 3 * ovol, -2.5, 4.5, 7);

  it('trilinear matches the reference', async () => {
    const y = F.warp(tensor(x, [N, C, ...inSize]), tensor(field, [N, 3, ...outSize]));
    expect(y.shape).toEqual([N, C, ...outSize]);
    expectClose(await y.read(), warpRef(x, inSize, field, outSize, N, C, 'trilinear'), elementwiseTol(), 'warp trilinear');
  });

  it('nearest matches the reference (positions kept away from rounding ties)', async () => {
    // integer part random, fraction in [0, 0.4] or [0.6, 1): no position sits near .5
    const f = field.map((v, i) => Math.floor(v) + (i % 2 ? 0.3 : 0.7));
    const labels = x.map((v) => (v > 0 ? 1 : 0));
    const y = F.warp(tensor(labels, [N, C, ...inSize]), tensor(f, [N, 3, ...outSize]), { mode: 'nearest' });
    const got = await y.read();
    expect(got).toEqual(Float32Array.from(warpRef(labels, inSize, f, outSize, N, C, 'nearest')));
    expect(new Set(got)).toEqual(new Set([0, 1]));
  });

  it('a zero field copies the input', async () => {
    const xs = x.slice(0, ovol);
    const y = F.warp(tensor(xs, [1, 1, ...outSize]), tensor(new Float32Array(3 * ovol), [1, 3, ...outSize]));
    expect(await y.read()).toEqual(xs);
  });

  it('refuses inputs that need gradients, and bad fields', () => {
    const xs = rand([1, 1, 3, 3, 3], { requiresGrad: true });
    expect(() => F.warp(xs, tensor(new Float32Array(81), [1, 3, 3, 3, 3]))).toThrow(/no backward/);
    expect(() => F.warp(rand([1, 1, 3, 3, 3]), rand([1, 2, 3, 3, 3]))).toThrow(/field must be \[N, 3, D, H, W\]/);
  });
});
