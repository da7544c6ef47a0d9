// The CLI's refusals, all before any work: arguments (whole numbers, positive numbers, patches),
// outputs (the input under another spelling, a symlink or a hard link; a missing or read-only folder;
// an extension the command does not write) and inputs (missing, empty, a folder, a .safetensors
// file with a bad header), each one line "medseg: <what is wrong>" that names the path. Every case
// runs through the command line in this process, and the last test checks that none of them opened
// the GPU (this file never calls init()).
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { noWeightsMessage } from '../../src/cli/segment.js';
import { runtime } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'medseg-cli-checks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DATA = new URL('../../data/', import.meta.url).pathname;
const scanBytes = readFileSync(join(DATA, 'ct_spleen_msd09_crop.nii.gz'));
const scan = join(dir, 'scan.nii.gz');
writeFileSync(scan, scanBytes);
const label = join(DATA, 'ct_spleen_msd09_crop_label.nii.gz');
const empty = join(dir, 'empty.nii.gz');
writeFileSync(empty, '');
const badHeader = join(dir, 'bad.safetensors');
writeFileSync(badHeader, Buffer.concat([Buffer.from([20, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": not json here}')]));
const weightsPath = join(dir, 'w.safetensors'); // a valid (empty) safetensors file
writeFileSync(weightsPath, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]));

/** Runs `medseg ...args` in this process; returns the exit status and what went to stderr. */
async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await runCli(['node', 'medseg', ...args]);
    return { code, err: err.join('') };
  } finally {
    spy.mockRestore();
  }
}

/** The command fails with exit status 1 and exactly one line (or the given lines) saying `message`. */
async function refused(args: string[], message: RegExp | string): Promise<string> {
  const { code, err } = await cli(...args);
  expect(code, err).toBe(1);
  expect(err).toMatch(/^medseg: /);
  expect(err).not.toMatch(/medseg: medseg|medseg \w+: medseg|EISDIR|ENOENT|DataView|unrecognised checkpoint/);
  if (typeof message === 'string') expect(err).toContain(message);
  else expect(err).toMatch(message);
  return err;
}

const train = (...more: string[]) => ['train', '--config', 'tiny', '--image', scan, '--label', label, ...more];
const segment = (...more: string[]) => ['segment', '--weights', weightsPath, ...more];

describe('numbers are checked before anything is read', () => {
  it('--steps must be a whole number: 1.5, abc, 0 and -2 are refused with what was given', async () => {
    for (const v of ['1.5', 'abc', '0', '-2', '1e3x']) await refused(train('--steps', v, '-o', join(dir, 'w1.safetensors')), `--steps must be a whole number ≥ 1, got '${v}'`);
  });
  it('--lr must be a positive number; --batch-size, --seed, --save-every whole numbers', async () => {
    await refused(train('--steps', '2', '--lr', '-1', '-o', join(dir, 'w1.safetensors')), "--lr must be a number > 0, got '-1'");
    await refused(train('--steps', '2', '--lr', 'fast', '-o', join(dir, 'w1.safetensors')), "--lr must be a number > 0, got 'fast'");
    await refused(train('--steps', '2', '--batch-size', '2.5', '-o', join(dir, 'w1.safetensors')), "--batch-size must be a whole number ≥ 1, got '2.5'");
    await refused(train('--steps', '2', '--seed', '-1', '-o', join(dir, 'w1.safetensors')), "--seed must be a whole number ≥ 0, got '-1'");
    await refused(train('--steps', '2', '--save-every', 'x', '-o', join(dir, 'w1.safetensors')), "--save-every must be a whole number ≥ 0, got 'x'");
  });
  it('a bad --patch or --spacing gives a one-line message, not the preprocessing JSON', async () => {
    for (const v of ['20,20,20', '16,16', '16,32,abc']) {
      const err = await refused(train('--steps', '2', '--patch', v, '-o', join(dir, 'w1.safetensors')), `--patch must be three whole multiples of 16 (D,H,W voxels) like 32,48,48, got '${v}'`);
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).not.toMatch(/intensity|overlap/);
    }
    await refused(train('--steps', '2', '--spacing', '1,0,1', '-o', join(dir, 'w1.safetensors')), "--spacing must be three numbers > 0 like 1.6,1.6,2.5, got '1,0,1'");
  });
  it('a patch too small for batch norm at batch 1 is refused before the data is read', async () => {
    await refused(train('--steps', '2', '--patch', '16,16,16', '-o', join(dir, 'w1.safetensors')), /batch norm in training needs 2 or more values per channel.*--batch-size 2/);
  });
  it('as many --label as --image', async () => {
    await refused(['train', '--image', scan, '--steps', '2', '-o', join(dir, 'w1.safetensors')], 'give as many --label as --image, at least one of each (got 1 and 0)');
  });
});

describe('outputs are checked before any work', () => {
  it('segment -o the input itself, under another spelling, through a symlink or a hard link, is refused and the scan is untouched', async () => {
    const link = join(dir, 'link.nii.gz');
    symlinkSync(scan, link);
    const hard = join(dir, 'hard.nii.gz');
    linkSync(scan, hard);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    for (const [input, output] of [
      [scan, scan],
      [scan, join(sub, '..', 'scan.nii.gz')],
      [scan, relative(process.cwd(), scan)],
      [scan, link],
      [link, scan],
      [scan, hard],
    ]) {
      await refused(segment(input, '-o', output), `output mask ${output} is the input scan (${input}): refusing to write over it`);
    }
    expect(readFileSync(scan).equals(scanBytes)).toBe(true);
  });
  it('train -o a training scan or label is refused; --resume may be the -o file', async () => {
    const lbl = join(dir, 'label.safetensors');
    symlinkSync(label, lbl);
    await refused(['train', '--image', scan, '--label', lbl, '--steps', '1', '-o', lbl], `output weights ${lbl} is the label map (${lbl}): refusing to write over it`);
  });
  it('a missing folder, a folder that is a file, a read-only folder, an output that is a folder', async () => {
    await refused(train('--steps', '2', '-o', 'missing_dir/w.safetensors'), 'output weights missing_dir/w.safetensors: folder missing_dir does not exist');
    await refused(segment(scan, '-o', join(dir, 'missing_dir', 'm.nii.gz')), `folder ${join(dir, 'missing_dir')} does not exist`);
    await refused(segment(scan, '-o', join(scan, 'm.nii.gz')), `${scan} is not a folder`);
    const ro = join(dir, 'readonly');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    // root may write anywhere; the check matters for everyone else
    if (process.getuid?.() !== 0) await refused(segment(scan, '-o', join(ro, 'm.nii.gz')), `folder ${ro} is not writable`);
    mkdirSync(join(dir, 'adir.nii.gz'));
    await refused(segment(scan, '-o', join(dir, 'adir.nii.gz')), `${join(dir, 'adir.nii.gz')} is a folder; give a file name inside it`);
  });
  it('the extension decides the format; others are refused', async () => {
    await refused(segment(scan, '-o', join(dir, 'mask.nrrd')), `output mask ${join(dir, 'mask.nrrd')}: the name must end in .nii.gz or .nii`);
    await refused(segment(scan, '-o', join(dir, 'mask.gz')), 'the name must end in .nii.gz or .nii');
    await refused(train('--steps', '2', '-o', join(dir, 'w.pt')), 'the name must end in .safetensors');
    await refused(['convert', weightsPath, '--model', 'vnet', '-o', join(dir, 'w.bin')], 'the name must end in .safetensors');
    await refused(['convert', weightsPath, '--model', 'vnet', '-o', weightsPath], `output ${weightsPath} is the checkpoint (${weightsPath}): refusing to write over it`);
  });
});

describe('inputs: errors name the path and what is wrong', () => {
  it('a missing file, an empty file, a folder', async () => {
    await refused(segment(join(dir, 'nope.nii.gz'), '-o', join(dir, 'm.nii.gz')), `input scan ${join(dir, 'nope.nii.gz')}: no such file`);
    await refused(segment(empty, '-o', join(dir, 'm.nii.gz')), `input scan ${empty} is empty (0 bytes)`);
    await refused(segment(dir, '-o', join(dir, 'm.nii.gz')), `input scan ${dir} is a folder, not a file`);
    await refused(['train', '--image', empty, '--label', label, '--config', 'tiny', '--steps', '2', '-o', join(dir, 'w1.safetensors')], `training scan ${empty} is empty (0 bytes)`);
    await refused(['convert', dir, '--model', 'vnet', '-o', join(dir, 'c.safetensors')], `checkpoint ${dir} is a folder, not a file`);
    await refused(['convert', empty, '--model', 'vnet', '-o', join(dir, 'c.safetensors')], `checkpoint ${empty} is empty (0 bytes)`);
  });
  it('a .safetensors file with a bad header is "not a valid safetensors file", for segment, train --resume and convert', async () => {
    await refused(['segment', '--weights', badHeader, scan, '-o', join(dir, 'm.nii.gz')], `weights ${badHeader}: not a valid safetensors file: header is not valid JSON`);
    await refused(train('--steps', '1', '--resume', badHeader, '-o', join(dir, 'w1.safetensors')), `--resume weights ${badHeader}: not a valid safetensors file`);
    await refused(['convert', badHeader, '--model', 'vnet', '-o', join(dir, 'c.safetensors')], `checkpoint ${badHeader}: not a valid safetensors file`);
    await refused(['segment', '--weights', empty, scan, '-o', join(dir, 'm.nii.gz')], `weights ${empty} is empty (0 bytes)`);
  });
  it('a scan that is not NIfTI says so', async () => {
    const junk = join(dir, 'junk.nii');
    writeFileSync(junk, 'not a nifti file at all, just text');
    await refused(segment(junk, '-o', join(dir, 'm.nii.gz')), `${junk}: not a NIfTI-1/2 file`);
  });
});

describe('segment without --weights', () => {
  it('says there are no published V-Net weights and prints the train command for the bundled scan', async () => {
    const { code, err } = await cli('segment', scan, '-o', join(dir, 'm.nii.gz'));
    expect(code).toBe(1);
    expect(err).toContain('no published V-Net weights');
    expect(err).toContain(noWeightsMessage());
    const cmd = noWeightsMessage().split('\n').find((l) => l.includes('medseg train'))!;
    for (const flag of ['--config tiny', '--spacing 6.4,6.4,10', '--patch 16,32,32', '--lr 1e-2', '--steps 60', '--no-flip', '--deform-sigma 0']) expect(cmd).toContain(flag);
    // the paths it prints are the bundled scan and label
    const paths = [...cmd.matchAll(/--(?:image|label) (\S+)/g)].map((m) => m[1]);
    expect(paths.map((p) => readFileSync(p).length)).toEqual([scanBytes.length, readFileSync(label).length]);
    // also when -o is missing too: the weights come first
    expect((await cli('segment', scan)).err).toContain('no published V-Net weights');
    await refused(['segment', '--weights', weightsPath, scan], 'segment needs -o MASK.nii.gz');
  });
});

describe('the help', () => {
  it('names only what runs: V-Net, MedSAM and TransUNet segmentation, and the checkpoints convert reads', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      const { buildProgram } = await import('../../src/cli/main.js');
      buildProgram().outputHelp();
    } finally {
      spy.mockRestore();
    }
    const help = out.join('').replace(/\s+/g, ' ');
    expect(help).toMatch(/V-Net \(train on NIfTI scans and labels, segment a scan\), MedSAM \(segment a slice/);
    expect(help).toMatch(/TransUNet \(segment a CT volume slice by slice, a slice or a PNG \/ JPEG with trained weights; fine-tune from the ImageNet-21k encoder or trained weights\)/);
    expect(help).toMatch(/MedSAM and TransUNet checkpoints to safetensors\. Options/);
    expect(help).not.toMatch(/does not run/);
  });
});

describe('none of the above', () => {
  it('opened the GPU', () => {
    expect(() => runtime()).toThrow(/call `await init\(\)`/);
  });
});
