// The `medseg` program as a user runs it: src/cli/main.ts bundled with esbuild into a temp folder and
// started with node, stderr a pipe (not a terminal), XDG_RUNTIME_DIR unset. Checks that the GPU's
// start-up noise never reaches stderr and one line names the adapter; that segment prints progress
// lines while its windows run and a final one; and Ctrl-C: during train (sent to the process group,
// as a terminal does) the weights so far are written atomically and the message says where, and
// during segment the current window finishes (a process that exits under running GPU work can crash
// in the driver's teardown: CI once saw SIGSEGV there), nothing is written and the message says so;
// both exit with status 130.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { models, weights } from '../../src/index.js';
import { NOISE } from '../../src/cli/filtered-child.js';
import { ready } from '../helpers.js';
import { BASE, disposeNet, loadArrs, randomState } from '../models/vnet-helpers.js';

const root = join(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-cli-process-'));
const bin = join(tmp, 'bin', 'medseg.mjs');
const work = join(tmp, 'work');
const scan = join(root, 'data', 'ct_spleen_msd09_crop.nii.gz');
const label = join(root, 'data', 'ct_spleen_msd09_crop_label.nii.gz');
const config = models.vnetConfig({ preset: 'tiny', baseChannels: BASE });

/** Random tiny weights whose metadata makes segment run a grid at `spacing` in 16^3 windows. */
async function weightsAt(name: string, spacing: [number, number, number]): Promise<string> {
  const net = new models.VNet(config);
  loadArrs(net, randomState(net, 3));
  const pre: models.VNetPreprocessing = { spacing, intensity: { kind: 'ct-window', min: -57, max: 164 }, patch: [16, 16, 16], overlap: 0.5 };
  const path = join(work, name);
  writeFileSync(path, (await weights.save(net.stateDict(), { metadata: models.vnetMetadata(config, pre) }))!);
  disposeNet(net);
  return path;
}

let few = ''; // a few windows (a 17 x 28 x 27 grid at 4.8 x 4.8 x 7.5 mm)
let many = ''; // about 600 windows (1.6 x 1.6 x 2.5 mm)

beforeAll(async () => {
  await ready();
  mkdirSync(work);
  symlinkSync(join(root, 'node_modules'), join(tmp, 'node_modules'), 'dir');
  await build({ entryPoints: [join(root, 'src/cli/main.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: bin, logLevel: 'error' });
  few = await weightsAt('few-windows.safetensors', [4.8, 4.8, 7.5]);
  many = await weightsAt('many-windows.safetensors', [1.6, 1.6, 2.5]);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  stderr: () => string;
  /** resolves once stderr matches */
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
  exit: Promise<number | null>;
}

function medseg(args: string[], { detached = false } = {}): Run {
  const env: NodeJS.ProcessEnv = { ...process.env, MEDSEG_PROGRESS_SECONDS: '0.3' };
  delete env.XDG_RUNTIME_DIR;
  delete env.MEDSEG_CLI_CHILD;
  const child = spawn(process.execPath, [bin, ...args], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], detached });
  let err = '';
  const waiters: { re: RegExp; done: () => void }[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    err += s;
    for (const w of [...waiters]) if (w.re.test(err)) (waiters.splice(waiters.indexOf(w), 1), w.done());
  });
  child.stdout!.resume();
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return {
    child,
    stderr: () => err,
    exit,
    waitFor: (re, ms = 120_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(err)) return resolve();
        const t = setTimeout(() => reject(new Error(`no ${re} on stderr within ${ms} ms; stderr:\n${err}`)), ms);
        waiters.push({ re, done: () => (clearTimeout(t), resolve()) });
        void exit.then(() => setTimeout(() => reject(new Error(`exited before ${re}; stderr:\n${err}`)), 50));
      }),
  };
}

const partials = () => readdirSync(work).filter((f) => f.endsWith('.partial'));

describe('medseg segment (the built program)', () => {
  it('stderr has no GPU start-up noise, one adapter line, progress lines while the windows run and a final one', async () => {
    const out = join(work, 'mask.nii.gz');
    const run = medseg(['segment', '--weights', few, scan, '-o', out]);
    expect(await run.exit, run.stderr()).toBe(0);
    const lines = run.stderr().split('\n');
    for (const l of lines) {
      expect(NOISE.some((re) => re.test(l)), `noise on stderr: ${l}`).toBe(false);
      expect(l).not.toMatch(/While initializing adapter|XDG_RUNTIME_DIR|artificially reduced|Loader Message|falling back to SwiftShader/);
    }
    expect(lines.filter((l) => l.startsWith('adapter: '))).toHaveLength(1);
    const progress = lines.filter((l) => /^windows \d+\/\d+ \(\d+%\), \d+ s$/.test(l));
    expect(progress.length, run.stderr()).toBeGreaterThanOrEqual(2);
    const total = Number(progress[0].match(/\/(\d+)/)![1]);
    expect(total).toBeGreaterThan(4);
    expect(progress[progress.length - 1]).toMatch(new RegExp(`^windows ${total}/${total} \\(100%\\)`));
    expect(lines.some((l) => l.includes(`, ${total} windows,`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`wrote ${out} (gzip NIfTI)`))).toBe(true);
    expect(existsSync(out)).toBe(true);
  });

  it('Ctrl-C during the windows: nothing is written, it says so, exit status 130', async () => {
    const out = join(work, 'interrupted-mask.nii.gz');
    const run = medseg(['segment', '--weights', many, scan, '-o', out]);
    await run.waitFor(/^windows \d+\/\d+/m);
    run.child.kill('SIGINT');
    expect(await run.exit, run.stderr()).toBe(130);
    expect(run.stderr()).toMatch(/^medseg: interrupted: stopping after the current window; nothing will be written$/m);
    expect(run.stderr()).toMatch(/^medseg: interrupted: nothing was written$/m);
    expect(run.stderr()).not.toMatch(/stopped by SIG/);
    expect(existsSync(out)).toBe(false);
    expect(partials()).toEqual([]);
  });
});

describe('medseg train (the built program)', () => {
  it('Ctrl-C to the process group after a step: writes the weights so far atomically, says where, exit status 130', async () => {
    const out = join(work, 'interrupted.safetensors');
    writeFileSync(out, 'an older file');
    const args = ['train', '--config', 'tiny', '--base-channels', String(BASE), '--spacing', '6.4,6.4,10', '--patch', '16,16,16', '--batch-size', '2', '--steps', '1000', '--image', scan, '--label', label, '-o', out];
    const run = medseg(args, { detached: true });
    await run.waitFor(/^steps [1-9]\d*\/1000/m);
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exit, run.stderr()).toBe(130);
    const err = run.stderr();
    expect(err).toMatch(/^medseg: interrupted: finishing the current step, then writing the weights so far/m);
    const m = err.match(new RegExp(`^medseg: interrupted: replaced ${out} with the weights after step (\\d+) of 1000; continue with --resume ${out}$`, 'm'));
    expect(m, err).not.toBeNull();
    const f = await weights.readSafetensors(readFileSync(out));
    expect(f.metadata).toMatchObject({ model: 'vnet', steps: m![1] });
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(Number(m![1])).toBeLessThan(1000);
    expect(partials()).toEqual([]);
  });
});
