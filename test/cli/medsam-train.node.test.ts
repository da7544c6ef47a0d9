// `medseg train --model medsam` with tiny-config weights written here (the formula values of
// medsam-helpers.ts): V-Net's options refused for MedSAM and MedSAM's for V-Net before any work;
// with --freeze-encoder on slices 1-5 of the spleen crop every labelled one (those whose label
// survives the nearest resize to 64 x 64, counted here) is a training image, the image encoder and the prompt
// encoder are bit for bit the starting weights and the mask decoder moved, the metadata records the
// config and `segment` then runs on the file without --config; without freezing, on the demo PNG
// with a grey PNG mask, an interrupt after two steps writes those two steps' weights (the image
// encoder moved too) and says so.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { io, models, weights } from '../../src/index.js';
import { runCli } from '../../src/cli/main.js';
import { runMedSAMSegment } from '../../src/cli/medsam-segment.js';
import { runMedSAMTrain, type MedSAMTrainArgs } from '../../src/cli/medsam-train.js';
import { ready } from '../helpers.js';
import { fillModule } from '../models/medsam-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-medsam-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const scan = join(DATA, 'ct_spleen_msd09_crop.nii.gz');
const label = join(DATA, 'ct_spleen_msd09_crop_label.nii.gz');
const png = join(DATA, 'medsam_demo_ct.png');
const start = join(dir, 'start.safetensors');

async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    return { code: await runCli(['node', 'medseg', 'train', ...args]), err: err.join('') };
  } finally {
    spy.mockRestore();
  }
}

async function train(a: Partial<MedSAMTrainArgs>) {
  const lines: string[] = [];
  const report = await runMedSAMTrain({ images: [scan], labels: [label], steps: 3, output: '', weights: start, progress: false, log: (l) => lines.push(l), ...a });
  return { report, lines };
}

/** Each tensor's stored bytes by name. */
async function tensorsOf(path: string): Promise<Map<string, Buffer>> {
  const bytes = readFileSync(path);
  return new Map((await weights.readSafetensors(bytes)).tensors.map((t) => [t.name, bytes.subarray(t.begin, t.end)]));
}
const same = (a: Buffer, b: Buffer) => a.equals(b);

describe('medseg train --model medsam', () => {
  it("refuses V-Net's options with --model medsam and MedSAM's with V-Net, before any work", async () => {
    const out = join(dir, 'x.safetensors');
    const base = ['--image', scan, '--label', label, '--steps', '2', '-o', out];
    expect(await cli('--model', 'medsam', '--resume', out, ...base)).toEqual({ code: 1, err: 'medseg: --resume is for --model vnet (MedSAM continues from --weights)\n' });
    expect(await cli('--model', 'medsam', '--patch', '16,16,16', ...base)).toEqual({ code: 1, err: 'medseg: --patch is for --model vnet\n' });
    expect(await cli('--model', 'medsam', '--no-flip', ...base)).toEqual({ code: 1, err: 'medseg: --no-flip is for --model vnet\n' });
    expect(await cli('--model', 'medsam', '--flip', ...base)).toEqual({ code: 1, err: 'medseg: --flip is for --model vnet\n' });
    expect(await cli('--freeze-encoder', '--config', 'tiny', ...base)).toEqual({ code: 1, err: 'medseg: --freeze-encoder is for --model medsam\n' });
    expect(await cli('--model', 'medsam', '--config', 'big', ...base)).toEqual({ code: 1, err: "medseg: --config must be vit_b or tiny, got 'big'\n" });
    expect((await cli('--model', 'medsam', '--image', scan, '--label', png, '--steps', '2', '-o', out)).err).toMatch(/^medseg: .*medsam_demo_ct\.png: /);
  });

  beforeAll(async () => {
    await ready();
    const net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
    writeFileSync(start, (await weights.save(net.stateDict(), { metadata: { model: 'medsam', medsam_config: 'tiny' } }))!);
    net.dispose();
  });

  it('--freeze-encoder on slices 1-5 of the spleen crop: each labelled one trains, only the mask decoder moves, and segment runs on the result', async () => {
    const output = join(dir, 'frozen.safetensors');
    const { report, lines } = await train({ output, freezeEncoder: true, steps: 3, lr: 1e-3, slices: '1-5' });
    // the slices of 1-5 whose label has foreground at 64 x 64 (nearest at pixel centres); the label starts at slice 3
    const lab = io.readNifti(readFileSync(label));
    const [nx, ny] = lab.dims;
    let labelled = 0;
    for (let z = 1; z <= 5; z++) {
      let any = false;
      for (let y = 0; y < 64 && !any; y++) for (let x = 0; x < 64 && !any; x++) any = lab.data[z * nx * ny + Math.floor(((y + 0.5) * ny) / 64) * nx + Math.floor(((x + 0.5) * nx) / 64)] > 0;
      if (any) labelled++;
    }
    expect(labelled).toBeGreaterThan(0);
    expect(labelled).toBeLessThan(5);
    expect(report.images).toBe(labelled);
    expect(lines).toContain(`encoder frozen: ${labelled} image embeddings computed once (${lines.find((l) => l.startsWith('encoder frozen'))!.match(/\(([\d.]+) s\)/)![1]} s); each step runs the mask decoder only`);
    expect(report.history).toHaveLength(3);
    for (const h of report.history) expect(Number.isFinite(h.loss) && h.dice >= 0 && h.dice <= 1).toBe(true);
    const before = await tensorsOf(start);
    const after = await tensorsOf(output);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    const moved = (prefix: string) => [...after.keys()].filter((k) => k.startsWith(prefix) && !same(after.get(k)!, before.get(k)!));
    expect(moved('image_encoder.')).toEqual([]);
    expect(moved('prompt_encoder.')).toEqual([]);
    expect(moved('mask_decoder.').length).toBeGreaterThan(50);
    const meta = (await weights.readSafetensors(readFileSync(output))).metadata;
    expect(meta).toMatchObject({ model: 'medsam', medsam_config: 'tiny', steps: '3', freeze_encoder: 'true', trained_on: 'ct_spleen_msd09_crop.nii.gz', started_from: 'start.safetensors' });
    const seg = await runMedSAMSegment({ input: scan, output: join(dir, 'seg.nii.gz'), weights: output, box: '24,28,143,148', slice: 13, progress: false, log: () => {} });
    expect(seg.config).toBe('tiny');
  });

  it('without freezing, on the demo PNG with a grey PNG mask: an interrupt after two steps writes the weights after step 2 (the image encoder moved too) and says so (exit status 130)', async () => {
    const mask = new Uint8Array(512 * 512);
    for (let y = 255; y <= 350; y++) for (let x = 95; x <= 190; x++) mask[y * 512 + x] = 255;
    const maskPath = join(dir, 'mask.png');
    writeFileSync(maskPath, io.writePng({ width: 512, height: 512, channels: 1, data: mask }));
    let checks = 0;
    const signal = { get aborted() { return ++checks > 2; } } as AbortSignal; // the loop checks before each step
    const output = join(dir, 'stopped.safetensors');
    const err = await train({ images: [png], labels: [maskPath], output, steps: 5, signal }).catch((e) => e);
    expect(err.message).toBe(`interrupted: wrote ${output} with the weights after step 2 of 5`);
    expect(err.exitCode).toBe(130);
    expect((await weights.readSafetensors(readFileSync(output))).metadata).toMatchObject({ steps: '2', freeze_encoder: 'false', trained_on: 'medsam_demo_ct.png' });
    const before = await tensorsOf(start);
    const after = await tensorsOf(output);
    const moved = [...after.keys()].filter((k) => !same(after.get(k)!, before.get(k)!));
    expect(moved.some((k) => k.startsWith('image_encoder.'))).toBe(true);
    expect(moved.some((k) => k.startsWith('mask_decoder.'))).toBe(true);
    expect(moved.some((k) => k.startsWith('prompt_encoder.'))).toBe(false);
  });
});
