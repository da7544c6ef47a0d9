// Shape ops: views (reshape, permute, transpose, expand, narrow, squeeze) and copies (contiguous,
// cat, pad) against the reference, with gradients; views must not copy.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor, memoryStats } from '../../src/index.js';
import { checkOp, held, ready } from '../helpers.js';
import { cat, pad, permute } from '../reference/ops.js';
import { Arr, unravel } from '../reference/ndarray.js';

beforeAll(ready);

describe('views', () => {
  it('permute + reshape + contiguous', () =>
    checkOp({
      name: 'permute',
      shapes: [[5, 7, 3, 2]],
      gpu: (x) => x.permute(2, 0, 3, 1).contiguous().reshape(3, -1),
      ref: (a) => permute(a, [2, 0, 3, 1]).reshape([3, 70]),
    }));
  it('reshape of a non-contiguous view copies, of a contiguous one does not', async () => {
    const x = tensor(new Float32Array(24).map((_, i) => i), [2, 3, 4]);
    const v = x.reshape(6, 4);
    expect(v.storage).toBe(x.storage);
    const t = x.transpose(0, 2);
    expect(t.storage).toBe(x.storage);
    const r = t.reshape(-1);
    expect(r.storage).not.toBe(x.storage);
    const want = permute(Arr.from(await x.read(), [2, 3, 4]), [2, 1, 0]).data;
    expect([...(await r.read())]).toEqual([...want]);
  });
  it('narrow and squeeze/unsqueeze', () =>
    checkOp({
      name: 'narrow',
      shapes: [[9, 1, 8]],
      gpu: (x) => x.narrow(2, 2, 5).squeeze(1).unsqueeze(0).narrow(1, 3, 4),
      ref: (a) => {
        const out = Arr.zeros([1, 4, 5]);
        for (let i = 0; i < out.size; i++) {
          const [, r, c] = unravel(i, [1, 4, 5]);
          out.data[i] = a.get([r + 3, 0, c + 2]);
        }
        return out;
      },
    }));
  it('contiguous() of a contiguous tensor stays in the graph', async () => {
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    x.contiguous().mul(2).sum().backward();
    expect([...(await x.grad!.read())]).toEqual([2, 2, 2]);
  });
  it('bad reshapes and permutes are refused with the shapes named', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => x.reshape(4, 2)).toThrow(/\[2, 3\].*\[4, 2\]/);
    expect(() => x.permute(0, 0)).toThrow(/permutation/);
    expect(() => x.expand(3, 3)).toThrow(/expand/);
  });
});

describe('cat and pad', () => {
  it('cat along a middle dim', () =>
    checkOp({ name: 'cat', shapes: [[3, 4, 5], [3, 2, 5], [3, 7, 5]], gpu: (a, b, c) => F.cat([a, b, c], 1), ref: (a, b, c) => cat([a, b, c], 1) }));
  it('cat along the last dim of transposed views', () =>
    checkOp({
      name: 'cat(views)',
      shapes: [[6, 4], [6, 3]],
      prepare: (t) => t.transpose(0, 1),
      gpu: (a, b) => F.cat([a, b], 0),
      ref: (a, b) => cat([permute(a, [1, 0]), permute(b, [1, 0])], 0),
    }));
  it('pad with asymmetric, multi-dim and negative (cropping) pads', async () => {
    await checkOp({ name: 'pad', shapes: [[2, 5, 7]], gpu: (x) => F.pad(x, [1, 2, 0, 3]), ref: (a) => pad(a, [1, 2, 0, 3]) });
    await checkOp({ name: 'pad value', shapes: [[4, 6]], gpu: (x) => F.pad(x, [2, 0], 1.5), ref: (a) => pad(a, [2, 0], 1.5) });
    await checkOp({ name: 'pad crop', shapes: [[4, 6]], gpu: (x) => F.pad(x, [-1, 2, 1, -2]), ref: (a) => pad(a, [-1, 2, 1, -2]) });
  });
});

describe('memory', () => {
  it('disposing every handle returns all bytes, views included', async () => {
    const before = held().bytes;
    const x = tensor(new Float32Array(1000), [10, 100]);
    const v = x.transpose(0, 1);
    const c = v.contiguous();
    const y = c.add(1);
    c.dispose();
    x.dispose();
    expect(held().bytes).toBeGreaterThan(before);
    v.dispose();
    y.dispose();
    expect(held().bytes).toBe(before);
  });
  it('backward frees its intermediate gradients', async () => {
    const x = tensor(new Float32Array(4096).fill(0.5), [64, 64], { requiresGrad: true });
    const before = memoryStats().liveBytes;
    const y = x.mul(x).exp().sum(1).mean();
    y.backward();
    await x.grad!.read();
    const extra = memoryStats().liveBytes - before;
    // the graph's saved activations (x*x, exp) are still referenced by y's nodes until y is dropped,
    // but no intermediate gradient may survive: only x.grad (16 KiB) beyond the forward tensors.
    expect(extra).toBeLessThanOrEqual(16384 + 16384 * 2 + 4096 + 1024);
    x.grad!.dispose();
  });
  it('a training step through linear, reshape of a view and cat leaves nothing behind', async () => {
    const { F: Fn, randn } = await import('../../src/index.js');
    const w = randn([6, 5], { requiresGrad: true });
    const step = async () => {
      const x = randn([4, 5]);
      const xt = x.transpose(0, 1);
      const xr = xt.reshape(4, 5);
      const y = Fn.linear(xr, w);
      const y2 = y.mul(2);
      const z = Fn.cat([y, y2], 1);
      const loss = z.sum();
      loss.backward();
      await w.grad!.read();
      for (const t of [x, xt, xr, y, y2, z, loss]) t.dispose();
      w.zeroGrad();
    };
    await step();
    const before = held();
    await step();
    await step();
    const after = held();
    expect(after.bytes).toBe(before.bytes);
    expect(after.tensors).toBe(before.tensors);
    expect(w.graphUses).toBe(0);
  });
  it('use after dispose is an error naming the tensor', () => {
    const x = tensor([1, 2, 3]);
    x.dispose();
    expect(() => x.add(1)).toThrow(/disposed/);
  });
});
