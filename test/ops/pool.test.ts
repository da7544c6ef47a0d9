// Pooling: forward vs the float64 reference and gradients vs finite differences, TransUNet's
// 3x3 stride-2 max pool (with and without padding), overlapping and non-overlapping windows,
// ceil mode, average pooling with and without counting the padding; the argmax indices.
import { beforeAll, describe, expect, it } from 'vitest';
import { F } from '../../src/index.js';
import { checkOp, expectStepLeavesNothing, ready, upload } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { randomArr } from '../reference/ndarray.js';
import { avgPool2d as refAvg, maxPool2d as refMax } from '../reference/conv.js';

beforeAll(ready);

describe('maxPool2d', () => {
  const cases: [string, number[], number, { stride?: number; padding?: number; ceilMode?: boolean }][] = [
    ['ResNet stem 3x3 s2 p1', [2, 3, 9, 11], 3, { stride: 2, padding: 1 }],
    ['TransUNet 3x3 s2 p0', [1, 4, 11, 10], 3, { stride: 2 }],
    ['2x2 non-overlapping, odd size', [2, 2, 7, 9], 2, {}],
    ['3x3 s2 ceil mode', [1, 2, 8, 7], 3, { stride: 2, ceilMode: true }],
  ];
  for (const [name, shape, k, o] of cases) {
    it(`${name} ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'maxPool2d',
        shapes: [shape],
        gpu: (x) => F.maxPool2d(x, k, o),
        ref: (x) => refMax(x, { kernel: [k, k], stride: o.stride ? [o.stride, o.stride] : undefined, padding: o.padding ? [o.padding, o.padding] : undefined, ceilMode: o.ceilMode }),
      }));
  }
  it('returns the argmax as h*W + w within each plane', async () => {
    const xa = randomArr([1, 2, 5, 6], 3);
    const [y, idx] = F.maxPool2dWithIndices(upload(xa), 2, { stride: 2 });
    const ids = await idx.read();
    const vals = await y.read();
    for (let o = 0; o < ids.length; o++) {
      const plane = Math.floor(o / 6); // 2x3 outputs per 5x6 plane
      expect(Math.fround(xa.data[plane * 30 + ids[o]]), `index ${o}`).toBe(vals[o]);
    }
  });
});

describe('pooling memory', () => {
  it('maxPool2dWithIndices: the caller may dispose the indices before backward', () =>
    checkOp({
      name: 'maxPool2dWithIndices',
      shapes: [[1, 2, 5, 7]],
      gpu: (x) => {
        const [y, idx] = F.maxPool2dWithIndices(x, 2);
        idx.dispose();
        return y;
      },
      ref: (x) => refMax(x, { kernel: [2, 2] }),
    }));
  it('a training step through maxPool2d, maxPool2dWithIndices and avgPool2d leaves nothing behind', async () => {
    const x = upload(randomArr([1, 2, 6, 7], 5), true);
    await expectStepLeavesNothing(async () => {
      const a = F.maxPool2d(x, 3, { stride: 2, padding: 1 });
      const [b, idx] = F.maxPool2dWithIndices(x, 2);
      const c = F.avgPool2d(x, 2);
      const sa = a.sum();
      const sb = b.sum();
      const sc = c.sum();
      const s1 = sa.add(sb);
      const loss = s1.add(sc);
      loss.backward();
      await x.grad!.read();
      for (const t of [a, b, idx, c, sa, sb, sc, s1, loss]) t.dispose();
      x.zeroGrad();
    });
    expect(x.graphUses).toBe(0);
    x.dispose();
  });
});

describe('avgPool2d', () => {
  const cases: [string, number[], number, { stride?: number; padding?: number; ceilMode?: boolean; countIncludePad?: boolean }][] = [
    ['2x2', [2, 3, 6, 7], 2, {}],
    ['3x3 s2 p1 counting padding', [1, 2, 7, 9], 3, { stride: 2, padding: 1 }],
    ['3x3 s2 p1 not counting padding', [1, 2, 7, 9], 3, { stride: 2, padding: 1, countIncludePad: false }],
    ['3x3 s2 ceil mode', [1, 2, 8, 7], 3, { stride: 2, ceilMode: true, padding: 1 }],
  ];
  for (const [name, shape, k, o] of cases) {
    it(`${name} ${JSON.stringify(shape)}`, () =>
      checkOp({
        name: 'avgPool2d',
        shapes: [shape],
        gpu: (x) => F.avgPool2d(x, k, o),
        ref: (x) =>
          refAvg(x, {
            kernel: [k, k],
            stride: o.stride ? [o.stride, o.stride] : undefined,
            padding: o.padding ? [o.padding, o.padding] : undefined,
            ceilMode: o.ceilMode,
            countIncludePad: o.countIncludePad,
          }),
        tol: reductionTol(k * k),
      }));
  }
});
