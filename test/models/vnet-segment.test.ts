// V-Net inference through the API (both projects, so also in the browser): window placement and
// Gaussian weights; on a scan that is exactly one patch at the model spacing the pipeline's labels
// equal the argmax of the model's own forward.
import { beforeAll, describe, expect, it } from 'vitest';
import { models, tensor, noGrad } from '../../src/index.js';
import { ready } from '../helpers.js';
import { randomArr } from '../reference/ndarray.js';
import { BASE, disposeNet, loadArrs, randomState } from './vnet-helpers.js';

beforeAll(ready);

describe('sliding-window helpers', () => {
  it('windowStarts covers the axis with the requested step, the last window flush with the end', () => {
    expect(models.windowStarts(10, 16, 0.5)).toEqual([0]);
    expect(models.windowStarts(16, 16, 0.5)).toEqual([0]);
    expect(models.windowStarts(21, 16, 0.5)).toEqual([0, 5]);
    expect(models.windowStarts(40, 16, 0.5)).toEqual([0, 8, 16, 24]);
    expect(models.windowStarts(40, 16, 0)).toEqual([0, 16, 24]);
  });

  it('gaussianWeights: peak 1 at the centre, symmetric, sigma = size / 8, floored at 1e-3', () => {
    const g = models.gaussianWeights([16, 16, 32]);
    const at = (d: number, h: number, w: number) => g[(d * 16 + h) * 32 + w];
    expect(Math.max(...g)).toBeCloseTo(Math.exp(-2 * ((0.5 / 2) ** 2) / 2 - ((0.5 / 4) ** 2) / 2), 6);
    expect(at(3, 7, 11)).toBeCloseTo(at(12, 8, 20), 6);
    const sigma = 32 / 8;
    expect(at(7, 7, 16 + 4) / at(7, 7, 16)).toBeCloseTo(Math.exp(-((4.5 / sigma) ** 2 - (0.5 / sigma) ** 2) / 2), 5);
    expect(Math.min(...g)).toBeGreaterThanOrEqual(1e-3);
  });
});

describe('segmentVolume', () => {
  it('a scan of exactly one patch at the model spacing gives argmax of the model forward', async () => {
    const net = new models.VNet({ preset: 'tiny', baseChannels: BASE });
    loadArrs(net, randomState(net, 7));
    const pre: models.VNetPreprocessing = { spacing: [2, 2, 3], intensity: { kind: 'ct-window', min: -100, max: 200 }, patch: [16, 16, 16], overlap: 0.5 };
    const hu = randomArr([16, 16, 16], 23, -300, 400);
    const vol = { data: hu.f32(), dims: [16, 16, 16] as [number, number, number], spacing: [2, 2, 3] as [number, number, number], affine: [], datatype: 16, header: null as never };
    const res = await models.segmentVolume(net, vol, pre);
    expect(res.windows).toBe(1);
    expect(res.grid).toEqual([16, 16, 16]);
    net.eval();
    const x = tensor(Float32Array.from(hu.data, (v) => (Math.min(200, Math.max(-100, v)) + 100) / 300), [1, 1, 16, 16, 16]);
    const y = noGrad(() => net.forward(x));
    const logits = await y.read();
    let agree = 0;
    for (let i = 0; i < 4096; i++) if ((logits[4096 + i] > logits[i] ? 1 : 0) === res.labels[i]) agree++;
    // ties and last-ulp differences aside, every voxel agrees
    expect(agree).toBeGreaterThanOrEqual(4090);
    x.dispose();
    y.dispose();
    disposeNet(net);
  });
});
