// `medseg train --model vnet [--config paper|monai|tiny] --image IMG --label LBL [more pairs] --steps N -o W.safetensors [--resume W]`:
// trains V-Net with Dice loss and Adam on random foreground-balanced, randomly flipped patches of the
// given scans (resampled and normalised as `medseg segment` will), deformed by random smooth B-spline
// fields (--deform-sigma, --deform-cells), shows loss and Dice in the progress
// line, and writes safetensors whose metadata records the model config and the preprocessing (so
// `medseg segment` reproduces them). --resume continues from such a file (its config wins).
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { basename } from 'node:path';
import { init, runtime } from '../gpu/runtime.js';
import { manualSeed } from '../tensor.js';
import { load } from '../node.js';
import { save } from '../weights/save.js';
import { readNifti } from '../io/nifti.js';
import { VNet, VNET_PRESETS, vnetConfig, type VNetPreset } from '../models/vnet.js';
import { VNET_PREPROCESSING, checkPreprocessing, vnetMetadata, vnetSettingsFrom, type VNetPreprocessing } from '../models/vnet-inference.js';
import { PolyLR } from '../optim/lr-scheduler.js';
import { VNetTrainer, patchRandom, prepareCase, sampleBatch, type StepResult } from '../models/vnet-train.js';

export interface TrainArgs {
  images: string[];
  labels: string[];
  steps: number;
  output: string;
  config?: VNetPreset;
  resume?: string;
  lr?: number;
  batchSize?: number;
  /** overrides of the preset (ignored with resume, whose file records them) */
  baseChannels?: number;
  patch?: [number, number, number];
  spacing?: [number, number, number];
  seed?: number;
  /** 'constant' (default) or 'poly': lr * (1 - step / steps)^0.9, nnU-Net's schedule, over this run's steps */
  lrSchedule?: 'constant' | 'poly';
  /** standard deviation of the random deformation's control displacements, voxels (default 2; 0: off) */
  deformSigma?: number;
  /** random flips along each axis (default true) */
  flip?: boolean;
  /** B-spline cells per axis of the random deformation (default 2, the paper's grid) */
  deformCells?: number;
  /** write the weights every this many steps too (0: only at the end) */
  saveEvery?: number;
  /** also keep, in bestPath(output), the weights at the end of the window of this many steps whose mean
   * training Dice is the highest so far in this run (0: off) */
  keepBest?: number;
  progress?: boolean;
  json?: boolean;
  log?: (line: string) => void;
}

export interface TrainReport {
  steps: number;
  totalSteps: number;
  seconds: number;
  adapter: string;
  history: StepResult[];
  config: Record<string, unknown>;
}

/** Where --keep-best writes: W.safetensors -> W.best.safetensors. */
export const bestPath = (output: string): string => `${output.replace(/\.safetensors$/, '')}.best.safetensors`;

const triple = (s: string, what: string): [number, number, number] => {
  const v = s.split(/[,x]/).map(Number);
  if (v.length !== 3 || v.some((n) => !(n > 0))) throw new Error(`--${what} needs three positive numbers like 16,32,32, got '${s}'`);
  return v as [number, number, number];
};

export async function runTrain(args: TrainArgs): Promise<TrainReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (args.images.length === 0 || args.images.length !== args.labels.length) throw new Error(`medseg train: give as many --label as --image (got ${args.images.length} and ${args.labels.length})`);
  if (!(args.steps >= 1)) throw new Error(`medseg train: --steps must be at least 1`);
  const schedule = args.lrSchedule ?? 'constant';
  if (schedule !== 'constant' && schedule !== 'poly') throw new Error(`medseg train: --lr-schedule must be constant or poly, got '${schedule}'`);
  if (!(Number.isInteger(args.keepBest ?? 0) && (args.keepBest ?? 0) >= 0)) throw new Error(`medseg train: --keep-best needs a whole number of steps, got ${args.keepBest}`);
  const t0 = performance.now();
  await init();
  manualSeed(args.seed ?? 1);
  const preset = args.config ?? 'paper';
  let net: VNet;
  let pre: VNetPreprocessing;
  let doneBefore = 0;
  if (args.resume) {
    const w = await load(args.resume);
    const s = vnetSettingsFrom(w.metadata, preset);
    net = new VNet(s.config);
    net.loadStateDict(w.tensors, { strict: true });
    for (const t of w.tensors.values()) t.dispose();
    pre = s.preprocessing;
    doneBefore = Number(w.metadata.steps ?? 0) || 0;
    log(`resumed ${args.resume} (${doneBefore} steps)`);
  } else {
    net = new VNet(vnetConfig({ preset, ...(args.baseChannels ? { baseChannels: args.baseChannels } : {}) }));
    pre = checkPreprocessing({ ...VNET_PREPROCESSING[preset], ...(args.patch ? { patch: args.patch } : {}), ...(args.spacing ? { spacing: args.spacing } : {}) });
  }
  const config = net.config;
  const cases = [];
  for (let i = 0; i < args.images.length; i++) {
    const img = readNifti(await readFile(args.images[i]), args.images[i]);
    const lbl = readNifti(await readFile(args.labels[i]), args.labels[i]);
    const c = await prepareCase(img, lbl, pre);
    cases.push(c);
    log(`${basename(args.images[i])}: ${img.dims.join('x')} -> ${c.size.join('x')} at ${pre.spacing.join('x')} mm, ${c.foreground.length} foreground voxels`);
  }
  log(`V-Net ${config.variant}, ${config.baseChannels} base channels, patch ${pre.patch.join('x')}, batch ${args.batchSize ?? 1}, Adam lr ${args.lr ?? 1e-3} (${schedule}), on ${runtime().adapterName}`);
  const trainer = new VNetTrainer(net, { lr: args.lr ?? 1e-3 });
  const scheduler = schedule === 'poly' ? new PolyLR(trainer.optimizer, { maxSteps: args.steps }) : null;
  const random = patchRandom(args.seed ?? 1);
  const bs = args.batchSize ?? 1;
  const P = pre.patch;
  const pvol = P[0] * P[1] * P[2];
  if (bs * (pvol / 4096) < 2) {
    throw new Error(`medseg train: batch norm in training needs 2 or more values per channel at 1/16 resolution; patch ${P.join('x')} with batch ${bs} has 1 (use --batch-size 2 or a larger --patch)`);
  }
  const deformation = args.deformSigma === 0 ? null : { sigma: args.deformSigma ?? 2, cells: args.deformCells ?? 2 };
  log(deformation ? `random deformation: ${deformation.cells}x${deformation.cells}x${deformation.cells} B-spline cells, sigma ${deformation.sigma} voxels` : 'random deformation off');
  const history: StepResult[] = [];
  const metadata = () => ({ ...vnetMetadata(config, pre), steps: String(doneBefore + history.length), trained_on: args.images.map((p) => basename(p)).join(',') });
  const write = async (path = args.output, extra: Record<string, string> = {}) => {
    const bytes = await save(net.stateDict(), { metadata: { ...metadata(), ...extra } });
    await writeFile(`${path}.tmp`, bytes!);
    await rename(`${path}.tmp`, path);
  };
  const window = args.keepBest ?? 0;
  let bestDice = -1;
  const bar = args.progress ? new cliProgress.SingleBar({ format: 'training {bar} {value}/{total} | loss {loss} | dice {dice} | {rate} s/step', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  bar?.start(args.steps, 0, { loss: '-', dice: '-', rate: '-' });
  const tTrain = performance.now();
  try {
    for (let s = 0; s < args.steps; s++) {
      const { images: x, labels: y } = sampleBatch(cases, P, bs, random, { deformation, flip: args.flip ?? true });
      const r = await trainer.step(x, y);
      scheduler?.step();
      x.dispose();
      y.dispose();
      history.push(r);
      const rate = ((performance.now() - tTrain) / 1000 / (s + 1)).toFixed(2);
      if (bar) bar.update(s + 1, { loss: r.loss.toFixed(4), dice: r.dice.toFixed(3), rate });
      else if (!args.json) log(`step ${doneBefore + s + 1}/${doneBefore + args.steps}  loss ${r.loss.toFixed(4)}  dice ${r.dice.toFixed(3)}  ${rate} s/step`);
      if (args.saveEvery && (s + 1) % args.saveEvery === 0 && s + 1 < args.steps) await write();
      if (window && (s + 1) % window === 0) {
        const mean = history.slice(-window).reduce((a, h) => a + h.dice, 0) / window;
        if (mean > bestDice) {
          bestDice = mean;
          const steps = `${doneBefore + s + 2 - window}-${doneBefore + s + 1}`;
          await write(bestPath(args.output), { train_dice: mean.toFixed(4), train_dice_steps: steps });
          if (!args.json) log(`best mean training Dice ${mean.toFixed(3)} over steps ${steps}: wrote ${bestPath(args.output)}`);
        }
      }
    }
  } finally {
    bar?.stop();
  }
  await write();
  const seconds = (performance.now() - t0) / 1000;
  const report: TrainReport = { steps: args.steps, totalSteps: doneBefore + args.steps, seconds, adapter: runtime().adapterName, history, config: { ...config, preprocessing: pre } };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`wrote ${args.output} after ${report.totalSteps} steps (${seconds.toFixed(1)} s)`);
  trainer.optimizer.dispose();
  for (const t of net.stateDict().values()) t.dispose();
  return report;
}

export function register(program: Command): void {
  const collect = (v: string, prev: string[]) => [...prev, v];
  program
    .command('train')
    .description('train a model on NIfTI scans and labels; writes safetensors with its config and preprocessing')
    .addOption(new Option('-m, --model <model>', 'network').choices(['vnet']).default('vnet'))
    .addOption(new Option('-c, --config <preset>', 'model and preprocessing preset').choices(Object.keys(VNET_PRESETS)).default('paper'))
    .option('--image <file>', 'training scan (.nii/.nii.gz); repeat with --label for more cases', collect, [])
    .option('--label <file>', 'its label map', collect, [])
    .requiredOption('--steps <n>', 'optimisation steps', (v) => parseInt(v, 10))
    .requiredOption('-o, --output <file>', 'output .safetensors')
    .option('--resume <file>', 'continue from weights written by medseg train')
    .option('--lr <lr>', 'Adam learning rate', parseFloat, 1e-3)
    .addOption(new Option('--lr-schedule <schedule>', "'poly' decays the lr as (1 - step/steps)^0.9 over this run").choices(['constant', 'poly']).default('constant'))
    .option('--batch-size <n>', 'patches per step', (v) => parseInt(v, 10), 1)
    .option('--base-channels <n>', "override the preset's base channels", (v) => parseInt(v, 10))
    .option('--patch <d,h,w>', "override the preset's patch (D,H,W voxels, multiples of 16)", (v) => triple(v, 'patch'))
    .option('--spacing <x,y,z>', "override the preset's voxel spacing (mm)", (v) => triple(v, 'spacing'))
    .option('--seed <n>', 'seed for initialisation and sampling', (v) => parseInt(v, 10), 1)
    .option('--no-flip', 'no random flips')
    .option('--deform-sigma <voxels>', 'random smooth deformation: std of the control displacements (0 turns it off)', parseFloat, 2)
    .option('--deform-cells <n>', 'random smooth deformation: B-spline cells per axis', (v) => parseInt(v, 10), 2)
    .option('--save-every <n>', 'also write the weights every n steps', (v) => parseInt(v, 10), 0)
    .option('--keep-best <n>', 'also write W.best.safetensors: the weights after the n-step window with the highest mean training Dice', (v) => parseInt(v, 10), 0)
    .option('--json', 'print the loss/Dice history and timing as JSON on stdout')
    .option('--no-progress', 'no progress bar (a line per step instead)')
    .action(
      async (opts: { config: VNetPreset; image: string[]; label: string[]; steps: number; output: string; resume?: string; lr: number; lrSchedule: 'constant' | 'poly'; batchSize: number; baseChannels?: number; patch?: [number, number, number]; spacing?: [number, number, number]; seed: number; flip: boolean; deformSigma: number; deformCells: number; saveEvery: number; keepBest: number; json?: boolean; progress: boolean }) => {
        await runTrain({ ...opts, images: opts.image, labels: opts.label, progress: opts.progress && process.stderr.isTTY });
      },
    );
}
