// `medseg segment` end to end on the real spleen CT crop with a small random-weight model whose config and
// preprocessing travel in the safetensors metadata: the mask has the scan's dims and affine, is
// uint8 with labels in {0, 1}, and --json reports every stage (geometry and plumbing, not accuracy).
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, models, weights } from '../../src/index.js';
import { buildProgram } from '../../src/cli/main.js';
import { ready } from '../helpers.js';
import { BASE, disposeNet, loadArrs, randomState } from './vnet-helpers.js';

beforeAll(ready);

const DATA = new URL('../../data/', import.meta.url);

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
