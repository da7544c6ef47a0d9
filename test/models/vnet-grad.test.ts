// V-Net parameter gradients in training mode (batch statistics, the tiny code path with 2 base
// channels, N=2, 16^3) against central finite differences of the float64 reference network, for a
// sample of parameters spread over the network (each difference is two whole reference forwards).
import { beforeAll, describe, expect, it } from 'vitest';
import { models } from '../../src/index.js';
import { expectClose, ready, upload } from '../helpers.js';
import { Arr, randomArr } from '../reference/ndarray.js';
import { vnetRef } from '../reference/vnet.js';
import { BASE, disposeNet, loadArrs, randomState, refConfig } from './vnet-helpers.js';

beforeAll(ready);

describe('VNet parameter gradients vs finite differences of the reference', () => {
  const sample: [string, number][] = [
    ['in_tr.conv1.weight', 17],
    ['down_tr64.down_conv.weight', 101],
    ['down_tr256.ops.1.bn1.weight', 9],
    ['up_tr256.up_conv.weight', 333],
    ['up_tr128.relu2.weight', 7],
    ['up_tr32.ops.0.conv1.weight', 55],
    ['out_tr.conv2.bias', 1],
  ];
  it(`tiny vnet.pytorch in training mode (batch statistics, N=2): d sum(y * cot) / d p for ${sample.length} parameters`, async () => {
    const net = new models.VNet({ preset: 'tiny', baseChannels: BASE }).train();
    const state = randomState(net, 5);
    loadArrs(net, state);
    const xa = randomArr([2, 1, 16, 16, 16], 13, -1, 1);
    const x = upload(xa);
    const y = net.forward(x);
    const cot = randomArr(y.shape, 17, -1, 1);
    const g = upload(cot);
    y.backward(g);
    const cfg = refConfig(net, 'batch');
    const objective = (s: Map<string, Arr>) => {
      const r = vnetRef(xa, s, cfg);
      let acc = 0;
      for (let i = 0; i < r.size; i++) acc += r.data[i] * cot.data[i];
      return acc;
    };
    const params = net.stateDict();
    const got: number[] = [];
    const want: number[] = [];
    for (const [k, idx] of sample) {
      const p = params.get(k)!;
      expect(p.grad, `${k} has a gradient`).not.toBeNull();
      const at = idx % p.size;
      got.push((await p.grad!.read())[at]);
      const a = state.get(k)!;
      const h = 1e-4 * Math.max(1, Math.abs(a.data[at]));
      const plus = new Float64Array(a.data);
      const minus = new Float64Array(a.data);
      plus[at] += h;
      minus[at] -= h;
      const fp = objective(new Map(state).set(k, new Arr(plus, a.shape)));
      const fm = objective(new Map(state).set(k, new Arr(minus, a.shape)));
      want.push((fp - fm) / (2 * h));
    }
    // each entry is a sum over the whole network; entries are compared with the largest as scale
    expectClose(got, want, { rtol: 5e-3, atol: 2e-3 }, `VNet gradients (${sample.map(([k, i]) => `${k}[${i}]`).join(', ')})`);
    for (const t of [x, y, g]) t.dispose();
    disposeNet(net);
  });
});
