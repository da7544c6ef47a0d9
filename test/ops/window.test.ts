// SAM's window partition / unpartition with zero padding: forward vs the float64 reference,
// gradients vs its finite differences, strided inputs, and the round trip at SAM's 64 -> 70 -> 5x5
// windows of 14x14 (padded tokens are zeros, and cropped away on the way back).
import { beforeAll, describe, expect, it } from 'vitest';
import { windowPartition, windowUnpartition } from '../../src/ops/window.js';
import { checkOp, ready, upload } from '../helpers.js';
import * as ref from '../reference/attention.js';
import { randomArr } from '../reference/ndarray.js';
import { permute } from '../reference/ops.js';

beforeAll(ready);

describe('window partition', () => {
  it('pads 9x11 to 12x12 and cuts 3x3 windows of 4x4', () =>
    checkOp({
      name: 'windowPartition',
      shapes: [[2, 9, 11, 3]],
      gpu: (x) => windowPartition(x, 4).windows,
      ref: (x) => ref.windowPartition(x, 4),
    }));
  it('reads a permuted (NCHW -> NHWC) view', () =>
    checkOp({
      name: 'windowPartition(view)',
      shapes: [[2, 3, 7, 5]],
      prepare: (t) => t.permute(0, 2, 3, 1),
      gpu: (x) => windowPartition(x, 3).windows,
      ref: (x) => ref.windowPartition(permute(x, [0, 2, 3, 1]), 3),
    }));
});

describe('window unpartition', () => {
  it('crops 3x3 windows of 4x4 back to 9x11', () =>
    checkOp({
      name: 'windowUnpartition',
      shapes: [[18, 4, 4, 3]],
      gpu: (w) => windowUnpartition(w, 4, [12, 12], [9, 11]),
      ref: (w) => ref.windowUnpartition(w, 4, 9, 11),
    }));
  it('refuses a padded size that does not match', () => {
    const w = upload(randomArr([18, 4, 4, 3], 1));
    expect(() => windowUnpartition(w, 4, [12, 16], [9, 11])).toThrow(/padded size/);
  });
});

describe("SAM's 64x64 grid in 14x14 windows", () => {
  it('partitions into 25 windows with zero padding and round-trips exactly', async () => {
    const a = randomArr([1, 64, 64, 2], 3);
    const x = upload(a);
    const { windows, padHW } = windowPartition(x, 14);
    expect(padHW).toEqual([70, 70]);
    expect(windows.shape).toEqual([25, 14, 14, 2]);
    const want = ref.windowPartition(a, 14);
    expect(Array.from(await windows.read())).toEqual(Array.from(want.f32()));
    const back = windowUnpartition(windows, 14, padHW, [64, 64]);
    expect(Array.from(await back.read())).toEqual(Array.from(a.f32()));
    for (const t of [x, windows, back]) t.dispose();
  });
});
