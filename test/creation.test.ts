// Tensor creation: values of tensor/full/zeros/ones/arange, seeded rand/randn (deterministic per
// seed, with the right moments), nested-array shapes, and refusals of bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import { arange, full, manualSeed, ones, rand, randn, tensor, zeros } from '../src/index.js';
import { ready } from './helpers.js';

beforeAll(ready);

describe('creation', () => {
  it('tensor() infers nested shapes and keeps values', async () => {
    const t = tensor([[[1, 2]], [[3, 4]], [[5, 6]]]);
    expect(t.shape).toEqual([3, 1, 2]);
    expect([...(await t.read())]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/3 values/);
  });
  it('full / zeros / ones / arange', async () => {
    expect([...(await full([2, 3], -2.5).read())]).toEqual(new Array(6).fill(-2.5));
    expect([...(await zeros([4]).read())]).toEqual([0, 0, 0, 0]);
    expect([...(await ones([1, 2]).read())]).toEqual([1, 1]);
    expect([...(await arange(5).read())]).toEqual([0, 1, 2, 3, 4]);
    expect([...(await arange(1, 2, 0.25).read())]).toEqual([1, 1.25, 1.5, 1.75]);
    expect([...(await arange(3, 0, -1).read())]).toEqual([3, 2, 1]);
  });
  it('rand and randn are deterministic per seed and have the right moments', async () => {
    const a = await randn([20000], { seed: 3 }).read();
    const b = await randn([20000], { seed: 3 }).read();
    const c = await randn([20000], { seed: 4 }).read();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const m = a.reduce((s, x) => s + x, 0) / a.length;
    const v = a.reduce((s, x) => s + (x - m) ** 2, 0) / a.length;
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
    const u = await rand([20000], { seed: 5 }).read();
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(Math.abs(u.reduce((s, x) => s + x, 0) / u.length - 0.5)).toBeLessThan(0.01);
    manualSeed(11);
    const x = await rand([8]).read();
    manualSeed(11);
    expect(await rand([8]).read()).toEqual(x);
  });
});
