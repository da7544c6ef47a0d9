// matmul and linear: both kernel variants against the float64 reference at odd and batched
// shapes, broadcast batch dims, transposed operands (no copies), vectors, the fused bias, and
// gradients against finite differences.
import { afterEach, beforeAll, describe, it, expect } from 'vitest';
import { F, randn, type Tensor } from '../../src/index.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
type MatmulVariant = 'naive' | 'blocked' | 'tiled';
import { checkOp, expectStepLeavesNothing, ready } from '../helpers.js';
import { linear, matmul, permute } from '../reference/ops.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);
afterEach(() => setKernelVariant('matmul', null));

for (const variant of ['naive', 'blocked', 'tiled'] as MatmulVariant[]) {
  describe(`matmul (${variant})`, () => {
    const mm = (a: Tensor, b: Tensor) => {
      setKernelVariant('matmul', variant);
      return F.matmul(a, b);
    };
    const cases: [string, number[], number[]][] = [
      ['odd 2-d', [37, 53], [53, 29]],
      ['tile-crossing 2-d', [67, 130], [130, 71]],
      ['batched', [3, 19, 33], [3, 33, 21]],
      ['broadcast batch', [2, 1, 9, 17], [4, 17, 11]],
      ['matrix @ batched', [9, 17], [5, 17, 13]],
      ['vector @ matrix', [17], [17, 9]],
      ['matrix @ vector', [9, 17], [17]],
    ];
    for (const [name, sa, sb] of cases) {
      it(name, () =>
        checkOp({
          name: `matmul ${name}`,
          shapes: [sa, sb],
          gpu: mm,
          ref: (a, b) => {
            const a2 = sa.length === 1 ? a.reshape([1, sa[0]]) : a;
            const b2 = sb.length === 1 ? b.reshape([sb[0], 1]) : b;
            const r = matmul(a2, b2);
            const s = [...r.shape];
            if (sb.length === 1) s.pop();
            if (sa.length === 1) s.splice(s.length - (sb.length === 1 ? 0 : 2), 1);
            return r.reshape(s);
          },
          tol: reductionTol(sa[sa.length - 1]),
        }),
      );
    }
    it('K = 70000 (past llvmpipe\'s 65535 loop passes per invocation), in K slices', () =>
      checkOp({
        name: `matmul long K`,
        shapes: [[3, 70000], [70000, 2]],
        gpu: mm,
        ref: (a, b) => matmul(a, b),
        tol: reductionTol(70000),
      }));
    it('transposed operands are read through strides', () =>
      checkOp({
        name: 'matmul(A^T, B^T)',
        shapes: [[53, 37], [29, 53]],
        prepare: (t) => t.transpose(0, 1),
        gpu: mm,
        ref: (a, b) => matmul(permute(a, [1, 0]), permute(b, [1, 0])),
        tol: reductionTol(53),
      }));
  });
}

describe('linear', () => {
  it('x @ W^T + b with the bias fused, 3-d input, odd sizes', () =>
    checkOp({ name: 'linear', shapes: [[3, 37, 53], [29, 53], [29]], gpu: (x, w, b) => F.linear(x, w, b), ref: (x, w, b) => linear(x, w, b), tol: reductionTol(53) }));
  it('the bias is added once when K is split into slices (K = 20000)', () =>
    checkOp({ name: 'linear', shapes: [[2, 20000], [3, 20000], [3]], gpu: (x, w, b) => F.linear(x, w, b), ref: (x, w, b) => linear(x, w, b), domains: [[-1, 1], [-1, 1], [5, 6]], tol: reductionTol(20000) }));
  it('without bias, large enough for the tiled kernel', () =>
    checkOp({ name: 'linear', shapes: [[70, 96], [80, 96]], gpu: (x, w) => F.linear(x, w), ref: (x, w) => linear(x, w, null), tol: reductionTol(96) }));
  it('a training step with a strided (broadcast) bias leaves nothing behind', async () => {
    const x = randn([3, 5], { requiresGrad: true });
    const w = randn([4, 5], { requiresGrad: true });
    const b0 = randn([1], { requiresGrad: true });
    const leaves = [x, w, b0];
    await expectStepLeavesNothing(async () => {
      const b = F.expand(b0, [4]); // stride 0: copied to a dense bias inside
      const y = F.linear(x, w, b);
      const loss = y.sum();
      loss.backward();
      for (const t of leaves) await t.grad!.read();
      for (const t of [b, y, loss]) t.dispose();
      for (const t of leaves) t.zeroGrad();
    });
    for (const t of leaves) {
      expect(t.graphUses).toBe(0);
      t.dispose();
    }
  });
  it('names the shapes when they do not fit', async () => {
    const { randn } = await import('../../src/index.js');
    expect(() => F.linear(randn([2, 5]), randn([3, 4]))).toThrow(/\[2, 5\].*4/);
    expect(() => F.matmul(randn([2, 5]), randn([4, 3]))).toThrow(/\[2, 5\] @ \[4, 3\]/);
  });
});
