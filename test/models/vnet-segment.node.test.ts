// V-Net inference: window placement and Gaussian weights; on a scan that is exactly one patch at the
// model spacing the pipeline's labels equal the argmax of the model's own forward; and `medseg segment`
// end to end on the real spleen CT crop with a small random-weight model whose config and
// preprocessing travel in the safetensors metadata: the mask has the scan's dims and affine, is
// uint8 with labels in {0, 1}, and --json reports every stage (geometry and plumbing, not accuracy).
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, models, weights, tensor, noGrad } from '../../src/index.js';
import { buildProgram } from '../../src/cli/main.js';
import { ready } from '../helpers.js';
import { randomArr } from '../reference/ndarray.js';
import { BASE, disposeNet, loadArrs, randomState } from './vnet-helpers.js';

beforeAll(ready);

const DATA = new URL('../../../shared/data/', import.meta.url);

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

describe('medseg segment', () => {
  it('segments ct_spleen_msd09_crop.nii.gz with a random-weight model: geometry, dtype, labels, --json times', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'medseg-segment-'));
    const config = models.vnetConfig({ preset: 'tiny', baseChannels: BASE });
    // coarse spacing so the 164 x 166 x 26 crop (0.79 x 0.79 x 5 mm) is a 13 x 21 x 20 grid: 4 windows of 16^3
    const pre: models.VNetPreprocessing = { spacing: [6.4, 6.4, 10], intensity: { kind: 'ct-window', min: -57, max: 164 }, patch: [16, 16, 16], overlap: 0.5 };
    const net = new models.VNet(config);
    loadArrs(net, randomState(net, 11));
    const wpath = join(dir, 'vnet.safetensors');
    writeFileSync(wpath, (await weights.save(net.stateDict(), { metadata: models.vnetMetadata(config, pre) }))!);
    disposeNet(net);

    const input = new URL('ct_spleen_msd09_crop.nii.gz', DATA).pathname;
    const output = join(dir, 'mask.nii.gz');
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      await buildProgram().parseAsync(['node', 'medseg', 'segment', '--model', 'vnet', '--config', 'tiny', '--weights', wpath, input, '-o', output, '--json', '--no-progress']);
    } finally {
      spy.mockRestore();
    }
    const report = JSON.parse(out.join(''));
    expect(report.grid).toEqual([13, 21, 20]);
    expect(report.windows).toBe(4);
    for (const k of ['init', 'loadWeights', 'readNifti', 'preprocess', 'windows', 'postprocess', 'writeNifti', 'total']) expect(report.times[k], k).toBeGreaterThanOrEqual(0);
    expect(report.config).toMatchObject({ baseChannels: BASE, variant: 'vnet.pytorch', preprocessing: pre });

    const scan = io.readNifti(readFileSync(input));
    const mask = io.readNifti(readFileSync(output));
    expect(mask.dims).toEqual(scan.dims);
    expect(mask.spacing).toEqual(scan.spacing);
    expect(mask.affine).toEqual(scan.affine);
    expect(mask.datatype).toBe(2);
    const seen = new Set(mask.data);
    expect([...seen].every((v) => v === 0 || v === 1)).toBe(true);
    const counts = [0, 0];
    for (const v of mask.data) counts[v]++;
    expect({ '0': counts[0], ...(counts[1] ? { '1': counts[1] } : {}) }).toEqual(report.labelCounts);
  });
});
