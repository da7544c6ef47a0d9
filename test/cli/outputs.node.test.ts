// What the CLI writes, in this process on the GPU with small V-Nets (base width 2) on the bundled
// spleen crop at a coarse grid: the output extension decides the format (.nii plain, .nii.gz gzip);
// writing over an existing file replaces it atomically (a temp file renamed over it: a hard link to
// the old file keeps the old bytes, no temp file is left) and says "replaced"; a mask that is all
// background or all foreground warns; `train -o` over an existing file says it replaced it; and
// `convert --model vnet` of weights written by `medseg train` (tiny preset, not the published shapes)
// copies them, as f16 too, and the copy segments.
import { existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { io, models, weights } from '../../src/index.js';
import { runConvert } from '../../src/cli/convert.js';
import { writeAtomic } from '../../src/cli/files.js';
import { runSegment, type SegmentArgs } from '../../src/cli/segment.js';
import { runTrain } from '../../src/cli/train.js';
import { Arr } from '../reference/ndarray.js';
import { ready } from '../helpers.js';
import { BASE, disposeNet, loadArrs, randomState } from '../models/vnet-helpers.js';

beforeAll(ready);
const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-outputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const scan = join(DATA, 'ct_spleen_msd09_crop.nii.gz');
const label = join(DATA, 'ct_spleen_msd09_crop_label.nii.gz');
// 164 x 166 x 26 voxels at 0.79 x 0.79 x 5 mm -> a 13 x 21 x 20 grid: 4 windows of 16^3
const pre: models.VNetPreprocessing = { spacing: [6.4, 6.4, 10], intensity: { kind: 'ct-window', min: -57, max: 164 }, patch: [16, 16, 16], overlap: 0.5 };
const config = models.vnetConfig({ preset: 'tiny', baseChannels: BASE });

/** Random tiny weights; `bias` fixes the output layer's bias (large values force one label everywhere). */
async function weightsFile(name: string, bias?: [number, number]): Promise<string> {
  const net = new models.VNet(config);
  const state = randomState(net, 5);
  if (bias) state.set('out_tr.conv2.bias', Arr.from(bias, [2]));
  loadArrs(net, state);
  const path = join(dir, name);
  writeFileSync(path, (await weights.save(net.stateDict(), { metadata: models.vnetMetadata(config, pre) }))!);
  disposeNet(net);
  return path;
}

const partials = () => readdirSync(dir).filter((f) => f.endsWith('.partial'));

async function segment(args: Partial<SegmentArgs>) {
  const lines: string[] = [];
  const report = await runSegment({ input: scan, output: '', model: 'vnet', progress: false, log: (l) => lines.push(l), ...args });
  return { report, lines };
}

describe('writeAtomic', () => {
  it('renames a complete temp file over the target: a hard link to the old file keeps the old bytes', () => {
    const path = join(dir, 'a.bin');
    expect(writeAtomic(path, Buffer.from('old')).replaced).toBe(false);
    linkSync(path, join(dir, 'a-old.bin'));
    expect(writeAtomic(path, Buffer.from('new bytes')).replaced).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('new bytes');
    expect(readFileSync(join(dir, 'a-old.bin'), 'utf8')).toBe('old');
    expect(partials()).toEqual([]);
  });
});

describe('medseg segment output', () => {
  it('.nii is uncompressed, .nii.gz gzip; an existing mask is replaced atomically and the message says so', async () => {
    const w = await weightsFile('random.safetensors');
    const plain = join(dir, 'mask.nii');
    const gz = join(dir, 'mask.nii.gz');
    const a = await segment({ weights: w, output: plain });
    expect(a.lines.join('\n')).toMatch(new RegExp(`^wrote ${plain} \\(uncompressed NIfTI\\)`, 'm'));
    const bytes = readFileSync(plain);
    expect(bytes.readInt32LE(0)).toBe(348); // a NIfTI-1 header, not gzip's 1f 8b
    expect(bytes.length).toBe(352 + 164 * 166 * 26);
    await segment({ weights: w, output: gz });
    const z = readFileSync(gz);
    expect([z[0], z[1]]).toEqual([0x1f, 0x8b]);
    expect(io.readNifti(z).data).toEqual(io.readNifti(bytes).data);

    linkSync(plain, join(dir, 'mask-before.nii'));
    writeFileSync(plain, 'stale'); // through both names: the same file
    const again = await segment({ weights: w, output: plain });
    expect(again.lines.join('\n')).toMatch(new RegExp(`^replaced ${plain} \\(uncompressed NIfTI\\)`, 'm'));
    expect(readFileSync(plain).equals(bytes)).toBe(true);
    expect(readFileSync(join(dir, 'mask-before.nii'), 'utf8')).toBe('stale');
    expect(partials()).toEqual([]);
  });

  it('warns when the mask is all background or all foreground', async () => {
    const bg = await segment({ weights: await weightsFile('background.safetensors', [50, -50]), output: join(dir, 'bg.nii.gz') });
    expect(bg.report.labelCounts).toEqual({ '0': 164 * 166 * 26 });
    expect(bg.report.warning).toMatch(/^warning: the mask is all background/);
    expect(bg.lines).toContain(bg.report.warning);
    const fg = await segment({ weights: await weightsFile('foreground.safetensors', [-50, 50]), output: join(dir, 'fg.nii.gz') });
    expect(fg.report.labelCounts).toEqual({ '1': 164 * 166 * 26 });
    expect(fg.report.warning).toMatch(/^warning: the mask is all label 1 \(all foreground\)/);
    const mixed = await segment({ weights: await weightsFile('mixed.safetensors', [0, 0]), output: join(dir, 'mixed.nii.gz') });
    if (Object.keys(mixed.report.labelCounts).length === 2) {
      expect(mixed.report.warning).toBeUndefined();
      expect(mixed.lines.join('\n')).not.toMatch(/warning/);
    }
  });
});

describe('medseg train output and convert of its weights', () => {
  it('train -o an existing file says replaced; convert --model vnet copies the tiny-preset weights (f32, f16) and the copy segments', async () => {
    const out = join(dir, 'trained.safetensors');
    writeFileSync(out, 'an older file');
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await runTrain({ images: [scan], labels: [label], steps: 1, output: out, config: 'tiny', baseChannels: BASE, spacing: pre.spacing, patch: pre.patch, batchSize: 2, progress: false, log: (l) => lines.push(l) });
    } finally {
      spy.mockRestore();
    }
    expect(lines.join('\n')).toMatch(new RegExp(`^replaced ${out} after 1 steps`, 'm'));
    const trained = await weights.readSafetensors(readFileSync(out));
    expect(trained.metadata).toMatchObject({ model: 'vnet', steps: '1' });

    for (const dtype of ['f32', 'f16'] as const) {
      const copy = join(dir, `copied-${dtype}.safetensors`);
      const log: string[] = [];
      await runConvert({ checkpoint: out, output: copy, model: 'vnet', dtype, progress: false, log: (l) => log.push(l) });
      expect(log.join('\n')).toMatch(/V-Net weights written by medseg \(vnet\.pytorch, 2 base channels, 1 training steps\): they need no conversion/);
      expect(log.join('\n')).not.toMatch(/mis-shaped/);
      const f = await weights.readSafetensors(readFileSync(copy));
      expect(f.metadata).toMatchObject({ model: 'vnet', vnet_config: trained.metadata.vnet_config, vnet_preprocessing: trained.metadata.vnet_preprocessing, dtype });
      const layout = (x: typeof f) => x.tensors.map((t) => `${t.name} [${t.shape}]`).sort();
      expect(layout(f)).toEqual(layout(trained));
      expect(new Set(f.tensors.filter((t) => !t.name.endsWith('num_batches_tracked')).map((t) => t.dtype))).toEqual(new Set([dtype === 'f16' ? 'F16' : 'F32']));
    }
    const a = await segment({ weights: out, output: join(dir, 'from-trained.nii.gz') });
    const b = await segment({ weights: join(dir, 'copied-f32.safetensors'), output: join(dir, 'from-copy.nii.gz') });
    expect(b.report.labelCounts).toEqual(a.report.labelCounts);
    await segment({ weights: join(dir, 'copied-f16.safetensors'), output: join(dir, 'from-f16.nii.gz') });
    expect(existsSync(join(dir, 'from-f16.nii.gz'))).toBe(true);
    expect(partials()).toEqual([]);
  });
});
