// nn.Linear (state_dict keys, PyTorch's init bounds, seeding, forward and gradients), nn.Dropout
// and F.dropout (train/eval behaviour, keep rate, scaling, seeding, backward), nn.GELU/ReLU and the
// containers' state_dict names.
import { beforeAll, describe, expect, it } from 'vitest';
import { F, nn, tensor, type Tensor } from '../../src/index.js';
import { checkOp, expectClose, held, ready } from '../helpers.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { erf } from '../reference/ops.js';
import { elementwiseTol, reductionTol } from '../tolerance.js';

beforeAll(ready);

describe('nn.Linear', () => {
  it("has PyTorch's state_dict keys and shapes, with and without bias", () => {
    const l = new nn.Linear(5, 3, { seed: 1 });
    expect([...l.stateDict().keys()]).toEqual(['weight', 'bias']);
    expect(l.weight.shape).toEqual([3, 5]);
    expect(l.bias!.shape).toEqual([3]);
    const nb = new nn.Linear(5, 3, { bias: false, seed: 1 });
    expect([...nb.stateDict().keys()]).toEqual(['weight']);
    expect(nb.bias).toBeNull();
  });
  it('initialises W and b uniformly within 1/sqrt(in), reproducibly from the seed', async () => {
    const inF = 50;
    const bound = 1 / Math.sqrt(inF);
    const a = new nn.Linear(inF, 40, { seed: 42 });
    const w = await a.weight.read();
    const b = await a.bias!.read();
    for (const [name, v] of [['weight', w], ['bias', b]] as const) {
      const max = Math.max(...v.map(Math.abs));
      expect(max, `${name} within the bound`).toBeLessThanOrEqual(bound);
      expect(max, `${name} fills the bound`).toBeGreaterThan(0.9 * bound);
    }
    const mean = w.reduce((s, x) => s + x, 0) / w.length;
    const variance = w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length;
    expect(Math.abs(mean)).toBeLessThan(0.1 * bound);
    expect(variance).toBeCloseTo(bound ** 2 / 3, 3); // U(-b, b) has variance b^2 / 3
    const again = new nn.Linear(inF, 40, { seed: 42 });
    expect([...(await again.weight.read())]).toEqual([...w]);
    const other = new nn.Linear(inF, 40, { seed: 43 });
    expect([...(await other.weight.read())]).not.toEqual([...w]);
  });
  it('computes x W^T + b with gradients to x, W and b', async () => {
    const l = new nn.Linear(7, 5, { seed: 3 });
    const W = Arr.from(await l.weight.read(), [5, 7]);
    const B = Arr.from(await l.bias!.read(), [5]);
    await checkOp({
      name: 'Linear(7, 5)',
      shapes: [[2, 3, 7]],
      gpu: (x) => l.forward(x),
      ref: (x) => {
        const out = Arr.zeros([2, 3, 5]);
        for (let r = 0; r < 6; r++)
          for (let o = 0; o < 5; o++) {
            let s = B.data[o];
            for (let k = 0; k < 7; k++) s += x.data[r * 7 + k] * W.data[o * 7 + k];
            out.data[r * 5 + o] = s;
          }
        return out;
      },
      tol: reductionTol(7),
    });
    l.zeroGrad();
    // gradients to the module's own parameters
    const x = tensor(randomArr([4, 7], 9).f32(), [4, 7]);
    l.forward(x).sum().backward();
    const gw = await l.weight.grad!.read();
    const gb = await l.bias!.grad!.read();
    const xs = await x.read();
    for (let o = 0; o < 5; o++) {
      expect(gb[o]).toBeCloseTo(4, 5);
      for (let k = 0; k < 7; k++) expect(gw[o * 7 + k]).toBeCloseTo(xs[k] + xs[7 + k] + xs[14 + k] + xs[21 + k], 5);
    }
  });
});

describe('containers', () => {
  it('dispose() frees every parameter, buffer and gradient at once (memory back to before the model)', async () => {
    const before = held();
    class WithBuffer extends nn.Module {
      scale = this.buffer('scale', tensor([2, 2, 2, 2], [4]));
      forward(x: Tensor) {
        return x.mul(this.scale);
      }
    }
    const net = new nn.Sequential(new nn.Linear(6, 4, { seed: 1 }), new WithBuffer(), new nn.GELU(), new nn.Linear(4, 2, { seed: 2 }));
    const x = tensor(randomArr([3, 6], 5).data, [3, 6]);
    const y = net.forward(x);
    const loss = y.sum();
    loss.backward();
    for (const t of [loss, y, x]) t.dispose();
    const grads = net.parameters().filter((p) => p.grad).length;
    expect(grads).toBe(net.parameters().length);
    expect(held().tensors).toBeGreaterThan(before.tensors + grads);
    net.dispose();
    expect(held().tensors).toBe(before.tensors);
    expect(held().bytes).toBe(before.bytes);
  });
  it("Sequential and ModuleList name children 0, 1, ... as PyTorch's state_dict", () => {
    const seq = new nn.Sequential(new nn.Linear(4, 8, { seed: 1 }), new nn.GELU(), new nn.Dropout(0.1, { seed: 2 }), new nn.Linear(8, 2, { seed: 3 }));
    expect([...seq.stateDict().keys()]).toEqual(['0.weight', '0.bias', '3.weight', '3.bias']);
    class Block extends nn.Module {
      layers = this.child('layers', new nn.ModuleList([new nn.Linear(3, 3, { seed: 4 }), new nn.Linear(3, 2, { seed: 5 })]));
    }
    const b = new Block();
    expect([...b.stateDict().keys()]).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']);
    expect(b.layers.length).toBe(2);
    expect(b.layers.get(-1).getParam('weight')!.shape).toEqual([2, 3]);
    expect(() => b.layers.get(2)).toThrow(/out of range/);
  });
  it('Sequential applies its modules in order; eval() turns dropout off throughout', async () => {
    const seq = new nn.Sequential(new nn.ReLU(), new nn.Dropout(0.5, { seed: 1 }), new nn.GELU());
    const xa = randomArr([6, 9], 4, -2, 2);
    const x = tensor(xa.f32(), xa.shape);
    seq.eval();
    const y = await seq.forward(x).read();
    const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
    expectClose(y, xa.data.map((v) => gelu(Math.max(v, 0))), elementwiseTol(), 'gelu(relu(x))');
    seq.train();
    const z = await seq.forward(x).read();
    expect(z.filter((v, i) => v === 0 && xa.data[i] > 0).length).toBeGreaterThan(0);
  });
});

describe('dropout', () => {
  const N = 4000;
  const xa = randomArr([40, 100], 11, 0.5, 1.5); // no zeros, so zeros in the output are the mask
  it('zeroes about p of the elements and scales the rest by 1/(1-p)', async () => {
    const x = tensor(xa.f32(), xa.shape);
    for (const p of [0.1, 0.5, 0.8]) {
      const y = await F.dropout(x, p, true, { seed: 5 }).read();
      const dropped = y.filter((v) => v === 0).length / N;
      expect(Math.abs(dropped - p), `drop rate for p=${p}`).toBeLessThan(0.04);
      y.forEach((v, i) => {
        if (v !== 0) expect(Math.abs(v - xa.data[i] / (1 - p))).toBeLessThan(1e-6 * (xa.data[i] / (1 - p)));
      });
    }
  });
  it('is the identity in eval mode and for p = 0; all zeros for p = 1', async () => {
    const x = tensor(xa.f32(), xa.shape);
    const d = new nn.Dropout(0.5, { seed: 1 });
    d.eval();
    // the identity: a new handle on the same storage, so disposing x leaves it valid
    for (const y of [d.forward(x), F.dropout(x, 0.5, false), F.dropout(x, 0, true)]) {
      expect(y).not.toBe(x);
      expect(y.storage).toBe(x.storage);
      expect([...(await y.read())]).toEqual([...(await x.read())]);
    }
    expect([...(await F.dropout(x, 1, true).read())].every((v) => v === 0)).toBe(true);
    expect(() => new nn.Dropout(1.5)).toThrow(/p must be in \[0, 1\]/);
  });
  it('repeats masks for equal seeds, draws a new mask per call', async () => {
    const x = tensor(xa.f32(), xa.shape);
    const a = new nn.Dropout(0.5, { seed: 9 });
    const b = new nn.Dropout(0.5, { seed: 9 });
    const a1 = await a.forward(x).read();
    const a2 = await a.forward(x).read();
    const b1 = await b.forward(x).read();
    expect([...b1]).toEqual([...a1]);
    expect([...a2]).not.toEqual([...a1]);
    expect([...(await F.dropout(x, 0.3, true, { seed: 77 }).read())]).toEqual([...(await F.dropout(x, 0.3, true, { seed: 77 }).read())]);
  });
  it('backward passes the gradient through the same mask, scaled', async () => {
    const x = tensor(xa.f32(), xa.shape, { requiresGrad: true });
    const ga = randomArr([40, 100], 12);
    const y = F.dropout(x.permute(1, 0), 0.4, true, { seed: 3 }) as Tensor; // non-contiguous input
    const yv = await y.read();
    y.backward(tensor(ga.f32(), [100, 40]));
    const gx = await x.grad!.read();
    for (let r = 0; r < 40; r++)
      for (let c = 0; c < 100; c++) {
        const kept = yv[c * 40 + r] !== 0;
        const want = kept ? ga.data[c * 40 + r] / 0.6 : 0;
        expect(Math.abs(gx[r * 100 + c] - want)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want)));
      }
  });
});
