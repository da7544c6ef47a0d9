// `medseg segment --model medsam` with tiny-config weights written here (the formula values of
// medsam-helpers.ts, as safetensors) and test/fixtures/medsam_tiny_train.pth (a MedSAM training
// checkpoint from the real torch.save): refusals before the GPU opens (this file opens it only after
// them); the spleen crop with its label's box on slice 13 propagated over 12-14, the written mask
// against the predictor run here on the slices windowed here as pre_CT_MR.py does (-160..240 HU,
// min-max over the clipped volume, uint8) with each box the bounding box of the neighbour's mask,
// the input's geometry kept; an empty mask stops the propagation and says so; the demo PNG with
// MedSAM's box writes a 0/255 PNG equal to the predictor's mask; Ctrl-C (the AbortSignal) writes nothing.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { init, io, models, runtime, tensor, weights } from '../../src/index.js';
import { runCli } from '../../src/cli/main.js';
import { runMedSAMSegment, type MedSAMSegmentArgs } from '../../src/cli/medsam-segment.js';
import { fillModule } from '../models/medsam-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-medsam-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const scan = join(DATA, 'ct_spleen_msd09_crop.nii.gz');
const png = join(DATA, 'medsam_demo_ct.png');
const pth = new URL('../fixtures/medsam_tiny_train.pth', import.meta.url).pathname;
const SPLEEN_BOX = [24, 28, 143, 148] as const; // slice 13's label box (data/README.md)

async function run(args: Partial<MedSAMSegmentArgs>) {
  const lines: string[] = [];
  const report = await runMedSAMSegment({ input: scan, output: '', progress: false, log: (l) => lines.push(l), ...args });
  return { report, lines };
}

/** Tiny MedSAM with the formula's weights (plus `changes`), saved as safetensors recording its config. */
async function tinyWeights(name: string, changes: Record<string, number> = {}): Promise<string> {
  const net = new models.MedSAM({ config: 'tiny' });
  fillModule(net);
  for (const [key, value] of Object.entries(changes)) {
    const t = net.stateDict().get(key)!;
    net.loadStateDict(new Map([[key, tensor(new Float32Array(t.size).fill(value), t.shape)]]), { strict: false });
  }
  const path = join(dir, name);
  writeFileSync(path, (await weights.save(net.stateDict(), { metadata: { model: 'medsam', medsam_config: 'tiny' } }))!);
  net.dispose();
  return path;
}

describe('medseg segment --model medsam: refused before the GPU opens', () => {
  it('a missing or bad box, slices, window or output, a 2-D image with slice options, vit_b weights that are not vit_b', async () => {
    const out = join(dir, 'm.nii.gz');
    const refused = async (a: Partial<MedSAMSegmentArgs>, msg: string | RegExp) => expect(run({ weights: pth, config: 'tiny', output: out, box: '24,28,143,148', slice: 13, ...a })).rejects.toThrow(msg);
    await refused({ weights: undefined }, /needs weights \(--weights W\): MedSAM's medsam_vit_b\.pth/);
    await refused({ box: undefined }, 'segment --model medsam needs --box x0,y0,x1,y1');
    await refused({ box: '10,10,5,20' }, "--box must be x0,y0,x1,y1: four numbers ≥ 0 with x0 ≤ x1 and y0 ≤ y1, like 95,255,190,350, got '10,10,5,20'");
    await refused({ box: '24,28,165,148' }, '--box 24,28,165,148 reaches outside the 164x166 image');
    await refused({ slice: 26 }, "--slice 26 is past the scan's last slice (26 slices: 0-25)");
    await refused({ slice: undefined }, '--slice Z is needed: ');
    await refused({ slices: '14-20' }, '--slice 13 is outside --slices 14-20');
    await refused({ slices: '20-14' }, "--slices must be A-B, two whole slice numbers with A ≤ B, like 5-20, got '20-14'");
    await refused({ slices: '10-30' }, "--slices 30 is past the scan's last slice");
    await refused({ window: 'liver' }, "--window must be abdomen, lung, bone, brain, mr, or level,width in HU like 40,400, got 'liver'");
    await refused({ output: join(dir, 'm.png') }, 'the name must end in .nii.gz or .nii');
    await refused({ input: png, output: join(dir, 'm.nii.gz'), slice: undefined }, 'the name must end in .png');
    await refused({ input: png, output: join(dir, 'm.png') }, `--slice is for volumes; ${png} is a 2-D image`);
    await refused({ config: 'vit_b' }, `weights ${pth}: does not match the medsam schema 'medsam_vit_b'`);
    await refused({ config: 'huge' }, "--config must be vit_b or tiny, got 'huge'");
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
    expect(existsSync(out)).toBe(false);
  });
  it('through the command line: --model picks the segmenter, whose options are its own', async () => {
    const cli = async (...args: string[]) => {
      const err: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
      try {
        return { code: await runCli(['node', 'medseg', 'segment', ...args]), err: err.join('') };
      } finally {
        spy.mockRestore();
      }
    };
    const out = join(dir, 'cli.nii.gz');
    expect(await cli('--model', 'medsam', '--weights', pth, '--config', 'tiny', scan, '-o', out)).toEqual({ code: 1, err: 'medseg: segment --model medsam needs --box x0,y0,x1,y1 (pixels of the slice: x the first voxel index, y the second)\n' });
    expect(await cli('--weights', pth, '--box', '1,2,3,4', scan, '-o', out)).toEqual({ code: 1, err: 'medseg: --box is for --model medsam\n' });
    expect((await cli('--model', 'medsam', '--weights', pth, '--box', '1,2,3,4', '--slice', '3', scan, '-o', out)).err).toMatch(/^medseg: weights .*medsam_tiny_train\.pth: does not match the medsam schema 'medsam_vit_b'.*\(if these are tiny-config weights, say --config tiny\)/s);
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
  });
});

describe('medseg segment --model medsam', () => {
  it('spleen slice 13 propagated over 12-14: each slice equals the predictor on the slice windowed here, with the neighbour mask\'s bounding box; the geometry is the input\'s', async () => {
    await init();
    const w = await tinyWeights('tiny.safetensors');
    const output = join(dir, 'spleen.nii.gz');
    const { report, lines } = await run({ weights: w, output, box: SPLEEN_BOX.join(','), slice: 13, slices: '12-14' });
    expect(lines.join('\n')).toMatch(/CT window abdomen \(-160\.\.240 HU\) \(chosen because the scan's minimum is -1\d+ HU, so CT/);
    const vol = io.readNifti(readFileSync(scan));
    const mask = io.readNifti(readFileSync(output));
    expect(mask.dims).toEqual(vol.dims);
    expect(mask.affine).toEqual(vol.affine);
    expect(mask.datatype).toBe(2);
    const [nx, ny, nz] = vol.dims;
    // the reference: pre_CT_MR.py's window over the whole volume, then the predictor slice by slice
    const clipped = Float64Array.from(vol.data, (v) => Math.min(240, Math.max(-160, v)));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of clipped) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const grey = Uint8Array.from(clipped, (v) => Math.trunc(((v - lo) / (hi - lo)) * 255));
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    const p = await net.predictor();
    const predict = async (z: number, box: readonly number[]) => {
      await p.setImage({ data: grey.subarray(z * nx * ny, (z + 1) * nx * ny), width: nx, height: ny, channels: 1 });
      const r = await p.predict({ box: box as models.Box });
      r.lowResLogitsTensor.dispose();
      return r.masks;
    };
    const plane = (z: number) => Array.from(mask.data.subarray(z * nx * ny, (z + 1) * nx * ny));
    const bbox = (m: ArrayLike<number>) => {
      let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
      for (let i = 0; i < m.length; i++) if (m[i]) (x0 = Math.min(x0, i % nx)), (x1 = Math.max(x1, i % nx)), (y0 = Math.min(y0, Math.floor(i / nx))), (y1 = Math.max(y1, Math.floor(i / nx)));
      return x1 < 0 ? null : [x0, y0, x1, y1];
    };
    const m13 = await predict(13, SPLEEN_BOX);
    expect(plane(13)).toEqual(Array.from(m13));
    const b = bbox(m13);
    console.log(`tiny formula weights: slice 13 mask ${m13.reduce((a, v) => a + v, 0)} px, its bounding box ${JSON.stringify(b)}; report ${JSON.stringify(report.slices.map((s) => [s.slice, s.pixels]))}`);
    if (b) {
      expect(report.slices.find((s) => s.slice === 14)!.box).toEqual(b);
      expect(report.slices.find((s) => s.slice === 12)!.box).toEqual(b);
      expect(plane(14)).toEqual(Array.from(await predict(14, b)));
    }
    for (let z = 0; z < nz; z++) if (z < 12 || z > 14) expect(plane(z).some((v) => v), `slice ${z} outside the range`).toBe(false);
    p.reset();
    net.dispose();
  });

  it('an empty mask on the box slice stops the propagation both ways and says so; the mask warns', async () => {
    const w = await tinyWeights('empty.safetensors', { 'mask_decoder.output_hypernetworks_mlps.0.layers.2.weight': 0, 'mask_decoder.output_hypernetworks_mlps.0.layers.2.bias': -50, 'mask_decoder.output_upscaling.3.weight': 0, 'mask_decoder.output_upscaling.3.bias': 1 });
    const { report, lines } = await run({ weights: w, output: join(dir, 'empty.nii'), box: SPLEEN_BOX.join(','), slice: 13, slices: '11-15' });
    expect(report.slices.map((s) => [s.slice, s.pixels])).toEqual([[13, 0]]);
    expect(report.stopped).toEqual(['slice 13 has an empty mask: no box for slice 14, propagation upwards stopped there', 'slice 13 has an empty mask: no box for slice 12, propagation downwards stopped there']);
    expect(lines).toContain('warning: the mask is empty: nothing was found in the box (are the weights trained, and is the box on the structure?)');
  });

  it("the demo PNG with MedSAM's box [95,255,190,350] and the training checkpoint (.pth) writes a 0/255 PNG equal to the predictor's mask", async () => {
    const output = join(dir, 'demo-mask.png');
    const { report } = await run({ input: png, weights: pth, config: 'tiny', output, box: '95,255,190,350' });
    const got = io.readPng(readFileSync(output), output);
    expect([got.width, got.height, got.channels, got.bitDepth]).toEqual([512, 512, 1, 8]);
    const net = new models.MedSAM({ config: 'tiny' });
    await net.loadWeights(readFileSync(pth));
    const p = await net.predictor();
    const img = io.readPng(readFileSync(png));
    await p.setImage({ data: img.data, width: 512, height: 512, channels: 1 });
    const r = await p.predict({ box: [95, 255, 190, 350] });
    r.lowResLogitsTensor.dispose();
    expect(Array.from(got.data)).toEqual(Array.from(r.masks, (m) => m * 255));
    expect(report.slices[0].pixels).toBe(r.masks.reduce((a, v) => a + v, 0));
    p.reset();
    net.dispose();
  });

  it('an interrupt (the AbortSignal Ctrl-C sets) stops after the current slice and writes nothing', async () => {
    const c = new AbortController();
    const output = join(dir, 'stopped.nii.gz');
    const lines: string[] = [];
    const err = await runMedSAMSegment({ input: scan, output, weights: pth, config: 'tiny', box: SPLEEN_BOX.join(','), slice: 13, slices: '0-25', window: 'abdomen', progress: false, signal: c.signal, log: (l) => (lines.push(l), /MedSAM tiny/.test(l) && c.abort()) }).catch((e) => e);
    expect(err.message).toBe('interrupted: nothing was written');
    expect(err.exitCode).toBe(130);
    expect(existsSync(output)).toBe(false);
  });
});
