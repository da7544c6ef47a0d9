// F.interpolate: nearest / bilinear / trilinear, both alignCorners values, up- and down-scaling by
// size and by scaleFactor, odd sizes, non-contiguous input; forward vs the float64 reference and
// gradients vs its finite differences.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F, randn, tensor, type Tensor } from '../../src/index.js';
import type { InterpolateOptions } from '../../src/ops/interpolate.js';
import { setTileBudget } from '../../src/ops/loop-budget.js';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import { interpolateRef } from '../reference/interpolate.js';
import { reductionTol, type Tolerance } from '../tolerance.js';

beforeAll(ready);

interface Case {
  shape: number[];
  opts: InterpolateOptions;
  permuted?: boolean;
}

const perDim = (v: number | readonly number[] | undefined, k: number) =>
  v === undefined ? undefined : typeof v === 'number' ? new Array<number>(k).fill(v) : [...v];

function run(c: Case, tol: Tolerance = reductionTol(16)) {
  const k = c.shape.length - 2;
  const mode = c.opts.mode === 'nearest' || c.opts.mode === undefined ? 'nearest' : 'linear';
  return checkOp({
    name: `interpolate ${JSON.stringify(c.opts)}`,
    shapes: [c.shape],
    // a permuted view of the same values: [N, C, ...] stored as [C, N, ...]
    prepare: c.permuted ? (t) => t.permute(1, 0, ...c.shape.slice(2).map((_, i) => i + 2)).contiguous().permute(1, 0, ...c.shape.slice(2).map((_, i) => i + 2)) : undefined,
    gpu: (x) => F.interpolate(x, c.opts),
    ref: (x) => interpolateRef(x, { size: perDim(c.opts.size, k), scaleFactor: perDim(c.opts.scaleFactor, k), mode, alignCorners: c.opts.alignCorners }),
    tol,
  });
}

// Upsampling by 300: each input's backward gathers a window of ~300 x 300 outputs, past llvmpipe's
// 65535 loop passes per invocation (shaders/interpolate.wgsl), so it runs as tiles of the window.
describe('backward windows split into launches', () => {
  afterEach(() => setTileBudget(null));
  const big: Case[] = [
    { shape: [1, 1, 2, 2], opts: { size: 600, mode: 'nearest' } },
    { shape: [1, 1, 2, 2], opts: { size: 600, mode: 'bilinear', alignCorners: false } },
    { shape: [1, 1, 2, 2], opts: { size: [600, 590], mode: 'bilinear', alignCorners: true } },
  ];
  for (const c of big) it(`${JSON.stringify(c.shape)} -> ${JSON.stringify(c.opts)}`, () => run(c, reductionTol(90000)));
  // At a budget of 4 passes every window runs as tiles of one output per dim, one launch each.
  const small: Case[] = [
    { shape: [1, 2, 3, 4, 5], opts: { scaleFactor: 2, mode: 'trilinear', alignCorners: false } },
    { shape: [1, 1, 3, 5, 4], opts: { scaleFactor: [1.5, 0.5, 2.25], mode: 'trilinear', alignCorners: true } },
    { shape: [1, 1, 3, 4, 5], opts: { scaleFactor: [2, 1.5, 0.5], mode: 'nearest' } },
    { shape: [1, 2, 6, 5], opts: { scaleFactor: [2.5, 1.5], mode: 'bilinear', alignCorners: false } },
  ];
  for (const c of small) {
    it(`${JSON.stringify(c.shape)} ${JSON.stringify(c.opts)}, tiles of one output`, () => {
      setTileBudget(4);
      return run(c);
    });
  }
});

describe('bilinear', () => {
  for (const alignCorners of [true, false]) {
    const cases: Case[] = [
      { shape: [2, 3, 5, 7], opts: { scaleFactor: 2, mode: 'bilinear', alignCorners } },
      { shape: [1, 2, 7, 9], opts: { size: [3, 4], mode: 'bilinear', alignCorners } },
      { shape: [1, 2, 9, 11], opts: { scaleFactor: 0.6, mode: 'bilinear', alignCorners } },
      { shape: [1, 1, 4, 5], opts: { size: [13, 1], mode: 'bilinear', alignCorners } },
      { shape: [1, 1, 6, 5], opts: { scaleFactor: [2.5, 1.5], mode: 'bilinear', alignCorners } },
      { shape: [2, 3, 5, 7], opts: { size: [9, 8], mode: 'bilinear', alignCorners }, permuted: true },
    ];
    for (const c of cases) it(`alignCorners=${alignCorners} ${JSON.stringify(c.shape)} ${JSON.stringify(c.opts.size ?? c.opts.scaleFactor)}${c.permuted ? ' (non-contiguous)' : ''}`, () => run(c));
  }
  it('mask resize as SAM: [1, 1, 16, 16] -> 37 x 37, alignCorners=false', () => run({ shape: [1, 1, 16, 16], opts: { size: 37, mode: 'bilinear', alignCorners: false } }));
});

describe('trilinear', () => {
  for (const alignCorners of [true, false]) {
    const cases: Case[] = [
      { shape: [1, 2, 3, 4, 5], opts: { scaleFactor: 2, mode: 'trilinear', alignCorners } },
      { shape: [2, 1, 5, 6, 7], opts: { size: [2, 3, 4], mode: 'trilinear', alignCorners } },
      { shape: [1, 1, 3, 5, 4], opts: { scaleFactor: [1.5, 0.5, 2.25], mode: 'trilinear', alignCorners } },
    ];
    for (const c of cases) it(`alignCorners=${alignCorners} ${JSON.stringify(c.shape)} ${JSON.stringify(c.opts.size ?? c.opts.scaleFactor)}`, () => run(c));
  }
});

describe('nearest', () => {
  const cases: Case[] = [
    { shape: [2, 3, 5, 7], opts: { scaleFactor: 2, mode: 'nearest' } },
    { shape: [1, 2, 5, 7], opts: { scaleFactor: 3, mode: 'nearest' } },
    { shape: [1, 2, 9, 10], opts: { size: [4, 6], mode: 'nearest' } },
    { shape: [1, 1, 10, 7], opts: { scaleFactor: [1.7, 0.6], mode: 'nearest' } },
    { shape: [1, 1, 3, 4, 5], opts: { scaleFactor: [2, 1.5, 0.5], mode: 'nearest' } },
    { shape: [1, 2, 6, 3, 5], opts: { size: [4, 7, 5], mode: 'nearest' } },
  ];
  for (const c of cases) it(`${JSON.stringify(c.shape)} ${JSON.stringify(c.opts.size ?? c.opts.scaleFactor)}`, () => run(c));
});

describe('interpolate memory', () => {
  it('a training step on a non-contiguous input leaves nothing behind', async () => {
    const x = randn([1, 2, 5, 4], { requiresGrad: true });
    await expectStepLeavesNothing(async () => {
      const xt = x.transpose(2, 3);
      const y = F.interpolate(xt, { size: [6, 7], mode: 'bilinear' });
      const loss = y.sum();
      loss.backward();
      await x.grad!.read();
      for (const t of [xt, y, loss]) t.dispose();
      x.zeroGrad();
    });
    expect(x.graphUses).toBe(0);
    x.dispose();
  });
});

describe('argument checks', () => {
  it('refuses bad modes, ranks and option combinations with a message naming the shapes', () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
    const y = tensor(new Float32Array(8), [2, 4]);
    expect(() => F.interpolate(x, { size: 3, mode: 'trilinear' })).toThrow(/5D.*\[2, 3, 4, 5\]/);
    expect(() => F.interpolate(y, { size: 3 })).toThrow(/4D.*\[2, 4\]/);
    expect(() => F.interpolate(x, { size: 3, scaleFactor: 2 })).toThrow(/exactly one/);
    expect(() => F.interpolate(x, { size: 3, mode: 'nearest', alignCorners: true })).toThrow(/alignCorners/);
    expect(() => F.interpolate(x, { size: [3, 3, 3], mode: 'bilinear' })).toThrow(/3 values for the 2 spatial dims/);
    const up = F.interpolate(x, { scaleFactor: 1.5, mode: 'bilinear' }) as Tensor;
    expect(up.shape).toEqual([2, 3, 6, 7]);
    for (const t of [x, y, up]) t.dispose();
  });
});
