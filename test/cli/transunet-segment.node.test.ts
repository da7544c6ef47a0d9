// `medseg segment --model transunet` with test/fixtures/transunet_tiny.pth (a real torch.save of the
// tiny model's state dict, whose logits transunet-weights.test.ts checks against PyTorch's): the
// refusals before the GPU opens (no weights, a bad --window / --batch-size / output, the
// ImageNet-21k .npz and an encoder-only safetensors, a state dict of another network, options of
// other networks); the bundled spleen CT volume (its first 8 slices): the written labels equal segmentVolumeSlices run
// here on the same scan, the input's geometry kept, the classes in the header's description; a
// one-slice NIfTI gives a one-slice NIfTI, the same through the .pth and a .safetensors of it;
// the demo PNG gives a PNG of label values equal to segmentSlices on its pixels with window
// [0, 255], with --json the report on stdout; an RGB PNG as its luma; Ctrl-C (the AbortSignal) writes nothing.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { init, io, models, runtime, weights } from '../../src/index.js';
import { runCli } from '../../src/cli/main.js';
import { runTransUNetSegment, transunetClasses, type TransUNetSegmentArgs } from '../../src/cli/transunet-segment.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-transunet-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const scan = join(DATA, 'ct_spleen_msd09_crop.nii.gz');
const png = join(DATA, 'medsam_demo_ct.png');
const pth = join(FIXTURES, 'transunet_tiny.pth');
const npz = join(FIXTURES, 'transunet_tiny_in21k.npz');

async function run(args: Partial<TransUNetSegmentArgs>) {
  const lines: string[] = [];
  const report = await runTransUNetSegment({ input: scan, output: '', weights: pth, progress: false, log: (l) => lines.push(l), ...args });
  return { report, lines };
}

/** A safetensors file of zero-filled float32 tensors with these shapes (no GPU needed). */
function safetensorsOf(path: string, shapes: Record<string, number[]>): string {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [k, shape] of Object.entries(shapes)) {
    const n = 4 * shape.reduce((a, b) => a * b, 1);
    header[k] = { dtype: 'F32', shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const bytes = new Uint8Array(8 + json.length + offset);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(new TextEncoder().encode(json), 8);
  writeFileSync(path, bytes);
  return path;
}

async function tinyNet(): Promise<InstanceType<typeof models.TransUNet>> {
  const net = new models.TransUNet({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
  await net.loadWeights(readFileSync(pth));
  return net;
}
const dispose = (net: InstanceType<typeof models.TransUNet>) => {
  net.dispose();
};

describe('medseg segment --model transunet: refused before the GPU opens', () => {
  it('no weights, a bad window, batch size or output, the encoder-only .npz and safetensors, another network\'s state dict', async () => {
    const out = join(dir, 'm.nii.gz');
    const refused = async (a: Partial<TransUNetSegmentArgs>, msg: string | RegExp) => expect(run({ output: out, ...a })).rejects.toThrow(msg);
    await refused({ weights: undefined }, /needs trained weights \(--weights W\): a TransUNet state dict as train\.py saves it .*R50\+ViT-B_16\.npz \(ImageNet-21k\) initialises the encoder only/);
    await refused({ output: '' }, 'segment needs -o MASK.nii.gz (or MASK.nii): where to write the labels');
    await refused({ window: '275,-125' }, "--window must be lo,hi: two numbers with lo < hi, like -125,275 (HU), got '275,-125'");
    await refused({ window: '40' }, "--window must be lo,hi: two numbers with lo < hi, like -125,275 (HU), got '40'");
    await refused({ batchSize: '0' }, "--batch-size must be a whole number ≥ 1, got '0'");
    await refused({ output: join(dir, 'm.png') }, 'the name must end in .nii.gz or .nii');
    await refused({ input: png, output: join(dir, 'm.nii.gz') }, 'the name must end in .png');
    await refused({ output: scan }, `output labels ${scan} is the input (${scan}): refusing to write over it`);
    await refused({ weights: npz }, `weights ${npz} is an .npz (TransUNet's R50+ViT-B_16.npz layout): it holds the ImageNet-21k encoder only (what load_from() reads), with no trained decoder or segmentation head, so it cannot segment; fine-tune from it first (medseg train --model transunet --weights ${npz} ...)`);
    const encoder = safetensorsOf(join(dir, 'encoder.safetensors'), { 'transformer.embeddings.position_embeddings': [1, 4, 8], 'transformer.encoder.encoder_norm.weight': [8] });
    await refused({ weights: encoder }, `weights ${encoder} has TransUNet encoder keys and no decoder.* or segmentation_head.* (converted from the ImageNet-21k .npz?): it holds the ImageNet-21k encoder only (what load_from() reads), with no trained decoder or segmentation head, so it cannot segment; fine-tune from the .npz first (medseg train --model transunet --weights R50+ViT-B_16.npz ...)`);
    const medsam = join(FIXTURES, 'medsam_tiny_train.pth');
    await refused({ weights: medsam }, `weights ${medsam}: TransUNet: the checkpoint has no 'transformer.embeddings.position_embeddings' (not a TransUNet state dict?)`);
    await refused({ weights: join(dir, 'absent.pth') }, `weights ${join(dir, 'absent.pth')}: no such file`);
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
    expect(existsSync(out)).toBe(false);
  });

  it('through the command line: --model transunet takes --window lo,hi and --batch-size, not the other networks\' options', async () => {
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
    const base = ['--model', 'transunet', '--weights', pth, scan, '-o', out];
    expect(await cli(...base, '--window', '-125,275', '--batch-size', '2', '--box', '1,2,3,4')).toEqual({ code: 1, err: 'medseg: --box is for --model medsam\n' });
    expect(await cli(...base, '--config', 'tiny')).toEqual({ code: 1, err: 'medseg: --config is for --model vnet or medsam (TransUNet reads its config from the weights)\n' });
    expect(await cli(...base, '--window=-125,-200')).toEqual({ code: 1, err: "medseg: --window must be lo,hi: two numbers with lo < hi, like -125,275 (HU), got '-125,-200'\n" });
    expect(await cli(...base, '--batch-size', 'x')).toEqual({ code: 1, err: "medseg: --batch-size must be a whole number ≥ 1, got 'x'\n" });
    expect(await cli('--weights', pth, '--batch-size', '2', scan, '-o', out)).toEqual({ code: 1, err: 'medseg: --batch-size is for --model transunet\n' });
    expect(await cli('--weights', pth, '--window', '-125,275', scan, '-o', out)).toEqual({ code: 1, err: 'medseg: --window is for --model medsam or transunet\n' });
    expect(await cli('--model', 'transunet', scan, '-o', out)).toMatchObject({ code: 1, err: expect.stringMatching(/^medseg: segment --model transunet needs trained weights/) });
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('what the labels mean, as far as docs/models/transunet.md says', () => {
  it("9 classes: 0 background and 1-8 the Synapse split's organs, unnamed; other counts only their range; the NIfTI description fits its 80 bytes", () => {
    const synapse = transunetClasses(9);
    expect(synapse.text).toBe('label 0 background, 1-8 the 8 organs of the TransUNet Synapse split (the repository does not name them; no organ names are recorded)');
    expect(synapse.description).toBe('medseg transunet: 0 background, 1-8 Synapse organs (names not verified)');
    expect(transunetClasses(2)).toEqual({ text: 'labels 0-1 (2 classes; what they mean depends on the training data)', description: 'medseg transunet labels 0-1' });
    for (const n of [2, 9, 100]) expect(transunetClasses(n).description.length).toBeLessThan(80);
  });
});

describe('medseg segment --model transunet', () => {
  it('the spleen CT (its first 8 slices): the labels equal segmentVolumeSlices on the same scan, with its geometry and the classes in the description', async () => {
    await init();
    // slices 0-7 of the bundled crop (the same voxel-to-world mapping), to keep the test's GPU time short
    const full = io.readNifti(readFileSync(scan));
    const [nx0, ny0] = full.dims;
    const input = join(dir, 'spleen-0-7.nii.gz');
    writeFileSync(input, io.writeNifti(full.data.subarray(0, nx0 * ny0 * 8), { ...full, dims: [nx0, ny0, 8] }, { datatype: 'int16' }));
    const output = join(dir, 'spleen.nii.gz');
    const { report, lines } = await run({ input, output, batchSize: 3 });
    const vol = io.readNifti(readFileSync(input));
    expect(vol.dims).toEqual([nx0, ny0, 8]);
    expect(vol.affine).toEqual(full.affine);
    const got = io.readNifti(readFileSync(output));
    expect(got.dims).toEqual(vol.dims);
    expect(got.affine).toEqual(vol.affine);
    expect(got.spacing).toEqual(vol.spacing);
    expect(got.datatype).toBe(2);
    expect(got.header.description).toBe('medseg transunet labels 0-1');
    const net = await tinyNet();
    const want = await models.segmentVolumeSlices(net, vol, { window: [-125, 275], batchSize: 3 });
    dispose(net);
    expect(Array.from(got.data)).toEqual(Array.from(want.labels));
    const ones = want.labels.reduce((a, v) => a + v, 0);
    console.log(`tiny .pth on the spleen crop's slices 0-7: ${ones} of ${want.labels.length} voxels label 1; ${lines.at(-1)}`);
    expect(ones > 0 && ones < want.labels.length).toBe(true); // both labels occur: the comparison is not of two constant masks
    expect(report.options).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    expect(report.labelCounts).toEqual({ 0: want.labels.length - ones, 1: ones });
    expect(report.slices).toBe(vol.dims[2]);
    expect(lines.some((l) => /8 axial slices, window \[-125, 275\] scaled to \[0, 1\]; TransUNet tiny \(32x32 input, 2 classes, 3 skips\), 3 slices per batch/.test(l))).toBe(true);
  });

  it('a one-slice NIfTI gives a one-slice NIfTI, the same through the .pth and a .safetensors of it, with another window', async () => {
    const vol = io.readNifti(readFileSync(scan));
    const [nx, ny] = vol.dims;
    const z = 13;
    const one = { ...vol, dims: [nx, ny, 1] as [number, number, number], data: vol.data.slice(z * nx * ny, (z + 1) * nx * ny) };
    const input = join(dir, 'slice13.nii');
    writeFileSync(input, io.writeNifti(one.data, one, { datatype: 'float32', gzip: false }));
    const net = await tinyNet();
    const st = join(dir, 'tiny.safetensors');
    writeFileSync(st, (await weights.save(net.stateDict()))!);
    const want = await models.segmentSlices(net, one.data, [nx, ny, 1], { window: [-160, 240] });
    dispose(net);
    for (const w of [pth, st]) {
      const output = join(dir, `slice13-${w === pth ? 'pth' : 'st'}.nii`);
      const err: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
      try {
        await run({ input, output, weights: w, window: '-160,240', progress: true });
      } finally {
        spy.mockRestore();
      }
      expect(err.join(''), 'the progress line').toMatch(/slices 1\/1 \(100%\), \d+ s\n$/);
      const got = io.readNifti(readFileSync(output));
      expect(got.dims).toEqual([nx, ny, 1]);
      expect(got.affine).toEqual(vol.affine);
      expect(Array.from(got.data), w).toEqual(Array.from(want.labels));
    }
  });

  it('the demo PNG gives a PNG of label values equal to segmentSlices on its pixels with window [0, 255]; --json prints the report', async () => {
    const output = join(dir, 'demo-labels.png');
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    let report, lines;
    try {
      ({ report, lines } = await run({ input: png, output, json: true }));
    } finally {
      spy.mockRestore();
    }
    expect(JSON.parse(out.join(''))).toEqual(report); // --json: the report on stdout, one line
    expect(lines.filter((l) => !/^adapter: /.test(l))).toEqual([]); // and nothing but the adapter line on stderr
    const got = io.readPng(readFileSync(output), output);
    expect([got.width, got.height, got.channels, got.bitDepth]).toEqual([512, 512, 1, 8]);
    const img = io.readPng(readFileSync(png));
    expect(img.channels).toBe(1);
    const net = await tinyNet();
    const want = await models.segmentSlices(net, img.data, [img.width, img.height, 1], { window: [0, 255] });
    dispose(net);
    expect(Array.from(got.data)).toEqual(Array.from(want.labels));
    expect(report.window).toEqual([0, 255]);
    expect(Object.keys(report.labelCounts).length).toBe(2);
  });

  it("an RGB PNG is taken as its grey luma (PIL's convert('L') weights), and says so", async () => {
    const [w, h] = [24, 20];
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 53 + (i % 3) * 90) % 256);
    const input = join(dir, 'rgb.png');
    writeFileSync(input, io.writePng({ width: w, height: h, channels: 3, data: rgb }));
    const output = join(dir, 'rgb-labels.png');
    const { lines } = await run({ input, output });
    expect(lines).toContain(`${input}: an RGB image, taken as its grey luma (299 R + 587 G + 114 B) / 1000 (TransUNet reads one channel)`);
    const grey = Uint8Array.from({ length: w * h }, (_, i) => Math.trunc((rgb[3 * i] * 299 + rgb[3 * i + 1] * 587 + rgb[3 * i + 2] * 114) / 1000));
    const net = await tinyNet();
    const want = await models.segmentSlices(net, grey, [w, h, 1], { window: [0, 255] });
    dispose(net);
    expect(Array.from(io.readPng(readFileSync(output)).data)).toEqual(Array.from(want.labels));
  });

  it('an interrupt (the AbortSignal Ctrl-C sets) stops before the next batch and writes nothing', async () => {
    const c = new AbortController();
    const output = join(dir, 'stopped.nii.gz');
    const err = await run({ output, batchSize: 1, signal: c.signal, log: (l) => /TransUNet tiny/.test(l) && c.abort() }).catch((e) => e);
    expect(err.message).toBe('interrupted: nothing was written');
    expect(err.exitCode).toBe(130);
    expect(existsSync(output)).toBe(false);
  });
});
