// `medseg train --model transunet` with test/fixtures/transunet_tiny.pth (a real torch.save of the
// tiny model) and transunet_tiny_in21k.npz (the ImageNet-21k layout for the tiny encoder): the
// refusals before the GPU opens (classes beyond the head, a config or class count the weights do not
// have, other networks' options, a non-class label value); a few steps on the spleen CT's slices
// from the .pth write safetensors that load strictly into the TransUNet their shapes name, differ
// from the start, record the options and pass segment's weights check; one
// step from the .npz (encoder from load_from, its config read from its shapes, a new 2-class head); one on a grey PNG with a label
// PNG; an interrupt after two of five
// steps writes the weights after step 2, one before the first step writes nothing.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { init, io, models, runtime, weights } from '../../src/index.js';
import { runCli } from '../../src/cli/main.js';
import { runTransUNetTrain, type TransUNetTrainArgs } from '../../src/cli/transunet-train.js';
import { readTransUNetWeights } from '../../src/cli/transunet-weights.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-transunet-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const scan = join(DATA, 'ct_spleen_msd09_crop.nii.gz');
const label = join(DATA, 'ct_spleen_msd09_crop_label.nii.gz');
const pth = join(FIXTURES, 'transunet_tiny.pth');
const npz = join(FIXTURES, 'transunet_tiny_in21k.npz');

async function train(args: Partial<TransUNetTrainArgs>) {
  const lines: string[] = [];
  const report = await runTransUNetTrain({ images: [scan], labels: [label], steps: 2, output: '', weights: pth, slices: '12-14', batchSize: 2, progress: false, log: (l) => lines.push(l), ...args });
  return { report, lines };
}

describe('medseg train --model transunet: refused before the GPU opens', () => {
  it('labels beyond the head, a config or class count the weights do not have, a label value that is no class', async () => {
    const out = join(dir, 'w.safetensors');
    const refused = async (a: Partial<TransUNetTrainArgs>, msg: string | RegExp) => expect(train({ output: out, ...a })).rejects.toThrow(msg);
    await refused({ output: join(dir, 'w.pth') }, 'the name must end in .safetensors');
    await refused({ labels: [] }, 'give as many --label as --image, at least one of each (got 1 and 0)');
    await refused({ config: 'R50-ViT-B_16' }, `starting weights ${pth} are TransUNet 'tiny' (their shapes say so), not --config R50-ViT-B_16`);
    await refused({ classes: 9 }, `starting weights ${pth} have 2 classes, not --classes 9`);
    await refused({ weights: npz, config: 'R50-ViT-B_16', classes: 2 }, `starting weights ${npz} are a TransUNet 'tiny' encoder (their shapes say so), not --config R50-ViT-B_16`);
    await refused({ config: 'huge' }, "--config must be R50-ViT-B_16 or tiny, got 'huge'");
    await refused({ window: '1,1' }, "--window must be lo,hi: two numbers with lo < hi, like -125,275 (HU), got '1,1'");
    await refused({ slices: '20-30' }, `--slices 20-30 reaches past the last slice of ${scan} (26 slices: 0-25)`);
    // a label PNG with class 5 for a 2-class model; a grey value 127.5 cannot occur in a PNG, so a float NIfTI label
    const img = join(dir, 'img.png');
    const lbl = join(dir, 'lbl.png');
    writeFileSync(img, io.writePng({ width: 8, height: 6, channels: 1, data: new Uint8Array(48).fill(100) }));
    writeFileSync(lbl, io.writePng({ width: 8, height: 6, channels: 1, data: Uint8Array.from({ length: 48 }, (_, i) => (i === 7 ? 5 : i % 2)) }));
    await refused({ images: [img], labels: [lbl], slices: undefined }, `label map ${lbl} holds class 5, but the model has 2 classes (0-1) as its starting weights say`);
    const vol = io.readNifti(readFileSync(label));
    const half = join(dir, 'half.nii');
    writeFileSync(half, io.writeNifti(Float32Array.from(vol.data, (v) => v / 2), vol, { datatype: 'float32', gzip: false }));
    await refused({ labels: [half] }, `label map ${half} slice 12: value 0.5 is not a class`);
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
    expect(existsSync(out)).toBe(false);
  });

  it("through the command line: --model transunet takes its options and refuses the other networks'", async () => {
    const cli = async (...args: string[]) => {
      const err: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
      try {
        return { code: await runCli(['node', 'medseg', 'train', ...args]), err: err.join('') };
      } finally {
        spy.mockRestore();
      }
    };
    const out = join(dir, 'cli.safetensors');
    const base = ['--image', scan, '--label', label, '--steps', '1', '-o', out];
    expect(await cli('--model', 'transunet', '--resume', out, ...base)).toEqual({ code: 1, err: 'medseg: --resume is for --model vnet (TransUNet continues from --weights)\n' });
    expect(await cli('--model', 'transunet', '--patch', '16,16,16', ...base)).toEqual({ code: 1, err: 'medseg: --patch is for --model vnet\n' });
    expect(await cli('--model', 'transunet', '--freeze-encoder', ...base)).toEqual({ code: 1, err: 'medseg: --freeze-encoder is for --model medsam\n' });
    expect(await cli('--classes', '3', ...base)).toEqual({ code: 1, err: 'medseg: --classes is for --model transunet\n' });
    expect(await cli('--model', 'medsam', '--batch-size', '2', ...base)).toEqual({ code: 1, err: 'medseg: --batch-size is for --model vnet or transunet\n' });
    expect(await cli('--weights', pth, ...base)).toEqual({ code: 1, err: 'medseg: --weights is for --model medsam or transunet\n' });
    expect(await cli('--model', 'transunet', '--weights', pth, '--classes', '1', ...base)).toEqual({ code: 1, err: "medseg: --classes must be a whole number ≥ 2, got '1'\n" });
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('medseg train --model transunet', () => {
  it('3 steps from the .pth on spleen slices 12-14 write weights that load strictly, moved from the start, that segment reads', async () => {
    await init();
    const output = join(dir, 'tuned.safetensors');
    const { report, lines } = await train({ output, steps: 3 });
    console.log(lines.at(-1));
    expect(report.history).toHaveLength(3);
    expect(report.slices).toBe(3);
    expect(report.options).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    for (const h of report.history) expect(Number.isFinite(h.loss) && h.accuracy >= 0 && h.accuracy <= 1).toBe(true);
    // trainer.py's poly schedule over the 3 steps: base, base, base (1 - 1/3)^0.9
    expect(report.history.map((h) => h.lr)).toEqual([0.01, 0.01, 0.01 * (2 / 3) ** 0.9].map((v) => expect.closeTo(v, 9)));
    const got = await weights.openCheckpoint(weights.bytesSource(readFileSync(output), output));
    expect(got.metadata).toMatchObject({ model: 'transunet', transunet_config: 'tiny', img_size: '32', num_classes: '2', n_skip: '3', steps: '3', started_from: 'transunet_tiny.pth' });
    const shapes = new Map([...got.tensors].map(([k, r]) => [k, r.shape]));
    expect(models.transunetOptionsFromShapes(shapes)).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    const net = new models.TransUNet({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    await net.loadWeights(readFileSync(output));
    const start = new models.TransUNet({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    await start.loadWeights(readFileSync(pth));
    const key = 'segmentation_head.0.weight';
    const [a, b] = await Promise.all([net.stateDict().get(key)!.read(), start.stateDict().get(key)!.read()]);
    expect(Array.from(a)).not.toEqual(Array.from(b));
    for (const m of [net, start]) m.dispose();
    // what segment reads before the GPU opens (the options from the shapes; it then loads as above)
    expect((await readTransUNetWeights(output)).options).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
  });

  it('1 step from the ImageNet-21k .npz: the encoder from load_from (its config from its shapes), a new 2-class head', async () => {
    const output = join(dir, 'from-npz.safetensors');
    const { report, lines } = await train({ output, weights: npz, classes: 2, steps: 1 });
    expect(lines).toContain(`${npz}: the encoder initialised as load_from() does; the decoder and segmentation head start from their random initialisation`);
    expect(lines).toContain(`${npz}: position table resampled from its 3x3 grid to 2x2 for 32x32 input (bilinear, corner-aligned: load_from()'s zoom order 1)`);
    expect(report.options).toEqual({ config: 'tiny', imgSize: 32, numClasses: 2, nSkip: 3 });
    const net = new models.TransUNet({ config: 'tiny', imgSize: 32, numClasses: 2 });
    await net.loadWeights(readFileSync(output));
    net.dispose();
  });

  it('a grey PNG with a label PNG (values the classes): 1 step from the .pth on the one image', async () => {
    const [w, h] = [40, 30];
    const img = join(dir, 'disc.png');
    const lbl = join(dir, 'disc-label.png');
    const inside = (i: number) => ((i % w) - 20) ** 2 + (Math.floor(i / w) - 15) ** 2 < 100;
    writeFileSync(img, io.writePng({ width: w, height: h, channels: 1, data: Uint8Array.from({ length: w * h }, (_, i) => (inside(i) ? 200 : 40)) }));
    writeFileSync(lbl, io.writePng({ width: w, height: h, channels: 1, data: Uint8Array.from({ length: w * h }, (_, i) => (inside(i) ? 1 : 0)) }));
    const output = join(dir, 'disc.safetensors');
    const { report } = await train({ images: [img], labels: [lbl], slices: undefined, output, steps: 1, batchSize: 1 });
    expect(report.slices).toBe(1);
    expect(report.history).toHaveLength(1);
    const net = new models.TransUNet({ config: 'tiny', imgSize: 32, numClasses: 2 });
    await net.loadWeights(readFileSync(output));
    net.dispose();
  });

  it('an interrupt after two of five steps writes the weights after step 2; one before the first step writes nothing', async () => {
    const output = join(dir, 'stopped.safetensors');
    let checks = 0;
    const signal = { get aborted() { return ++checks > 2; } } as AbortSignal;
    const written: number[] = [];
    const err = await train({ output, steps: 5, signal, onWrite: (_, s) => written.push(s) }).catch((e) => e);
    expect(err.message).toBe(`interrupted: wrote ${output} with the weights after step 2 of 5`);
    expect(err.exitCode).toBe(130);
    expect(written).toEqual([2]);
    const got = await weights.openCheckpoint(weights.bytesSource(readFileSync(output), output));
    expect(got.metadata.steps).toBe('2');
    const c = new AbortController();
    const none = join(dir, 'none.safetensors');
    const err2 = await train({ output: none, signal: c.signal, log: (l) => /SGD momentum 0\.9/.test(l) && c.abort() }).catch((e) => e);
    expect(err2.message).toBe('interrupted: no step had finished: nothing was written');
    expect(existsSync(none)).toBe(false);
  });
});
