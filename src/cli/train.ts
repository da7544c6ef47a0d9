// `medseg train --model vnet [--config paper|monai|tiny] --image IMG --label LBL [more pairs] [--steps N] -o W.safetensors [--resume W]`:
// fills in what is not given from the preset (VNET_PREPROCESSING, VNET_TRAIN_DEFAULTS: tiny's are the
// settings that work on the bundled spleen scan), checks every argument and the output (folder, .safetensors, not an input), reads the scans, labels
// and --resume file, then opens the GPU and trains V-Net with Dice loss and Adam on random
// foreground-balanced patches of the given scans, randomly flipped (--flip) (resampled and normalised as
// `medseg segment` will), deformed by random smooth B-spline fields (--deform-sigma, --deform-cells),
// with loss and Dice in the progress on stderr. Before writing the final weights it sets the batch
// norms' running statistics from --bn-calibration passes over unaugmented random windows with those
// weights (training's moving averages, over flipped, deformed patches of changing weights, made the
// mask under-segment). Writes safetensors (atomically) whose metadata records
// the model config and the preprocessing (so `medseg segment` reproduces them). --resume continues
// from such a file (its config wins; the defaults are those of --config, else of the preset the file's
// config is). Ctrl-C finishes the step and writes the weights so far.
// `--model medsam` (MedSAM fine-tuning) is medsam-train.ts, `--model transunet` (TransUNet
// fine-tuning) transunet-train.ts; the command line picks the network's trainer from TRAINERS by --model.
import { Command, Option } from 'commander';
import { basename } from 'node:path';
import { runtime } from '../gpu/runtime.js';
import { manualSeed } from '../tensor.js';
import { load } from '../node.js';
import { save } from '../weights/save.js';
import { VNet, VNET_PRESETS, vnetConfig, type VNetConfig, type VNetPreset } from '../models/vnet.js';
import { VNET_PREPROCESSING, checkPreprocessing, vnetMetadata, vnetSettingsFrom, type VNetPreprocessing } from '../models/vnet-inference.js';
import { PolyLR } from '../optim/lr-scheduler.js';
import { VNetTrainer, patchRandom, prepareCase, sampleBatch, type StepResult, type TrainingCase } from '../models/vnet-train.js';
import { CliError, oneOf, patchTriple, positiveNumber, positiveTriple, wholeNumber } from './args.js';
import { checkOutput, writeAtomic } from './files.js';
import { openGpu } from './gpu.js';
import { interrupted, watchInterrupt } from './interrupt.js';
import { Progress, stderrIsTerminal } from './progress.js';
import { readVolumePair } from './training-pairs.js';
import { readWeightsInput } from './weights-input.js';
import { runMedSAMTrain } from './medsam-train.js';
import { runTransUNetTrain } from './transunet-train.js';

export interface TrainArgs {
  images: string[];
  labels: string[];
  /** default: the preset's (VNET_TRAIN_DEFAULTS; paper and monai have none) */
  steps?: number;
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
  /** 'constant' or 'poly': lr * (1 - step / steps)^0.9, nnU-Net's schedule, over this run's steps (default: the preset's) */
  lrSchedule?: 'constant' | 'poly';
  /** standard deviation of the random deformation's control displacements, voxels (0: off; default: the preset's) */
  deformSigma?: number;
  /** random flips along each axis (default: the preset's) */
  flip?: boolean;
  /** B-spline cells per axis of the random deformation (default 2, the paper's grid) */
  deformCells?: number;
  /** write the weights every this many steps too (0: only at the end) */
  saveEvery?: number;
  /** also keep, in bestPath(output), the weights at the end of the window of this many steps whose mean
   * training Dice is the highest so far in this run (0: off) */
  keepBest?: number;
  /** forward passes over unaugmented windows that set the batch norms' running statistics of the written
   * weights (default 24; 0: keep training's moving averages); only for running-statistics batch norm */
  bnCalibration?: number;
  /** progress on stderr (default true): one updating line on a terminal, else a line every few seconds */
  progress?: boolean;
  json?: boolean;
  log?: (line: string) => void;
  /** stops training after the current step; the weights so far are written, then runTrain throws (exit status 130) */
  signal?: AbortSignal;
  /** called after each write of the weights */
  onWrite?: (path: string, steps: number) => void;
}

export interface TrainReport {
  steps: number;
  totalSteps: number;
  seconds: number;
  adapter: string;
  history: StepResult[];
  config: Record<string, unknown>;
}

/** The training settings a --config gives where an option is not given. */
export interface VNetTrainDefaults {
  lr: number;
  lrSchedule: 'constant' | 'poly';
  deformSigma: number;
  flip: boolean;
  /** none: --steps must be given */
  steps?: number;
}

/**
 * Per preset, what `medseg train --model vnet` does unless told otherwise (the voxel spacing and patch are
 * the preset's VNET_PREPROCESSING). tiny: the settings that work on the bundled spleen scan on a CPU
 * adapter, those of scripts/vnet-spleen.sh (Adam lr 3e-3 with the poly decay over 240 steps, deformation
 * sigma 1 voxel, no flips; with the tiny preset's 3.2 x 3.2 x 5 mm and 32x48x48 patches). paper and monai:
 * Adam's usual constant 1e-3 with flips and the paper's deformation, and no step count of their own.
 */
export const VNET_TRAIN_DEFAULTS: Record<VNetPreset, VNetTrainDefaults> = {
  paper: { lr: 1e-3, lrSchedule: 'constant', deformSigma: 2, flip: true },
  monai: { lr: 1e-3, lrSchedule: 'constant', deformSigma: 2, flip: true },
  tiny: { lr: 3e-3, lrSchedule: 'poly', deformSigma: 1, flip: false, steps: 240 },
};

/** The settings a V-Net training run uses: what TrainArgs gives, the rest from its preset. */
export interface VNetTrainSettings {
  preset: VNetPreset;
  config: VNetConfig;
  preprocessing: VNetPreprocessing;
  steps: number;
  lr: number;
  lrSchedule: 'constant' | 'poly';
  batchSize: number;
  seed: number;
  /** null: off */
  deformation: { sigma: number; cells: number } | null;
  flip: boolean;
}

/** The preset whose model config a --resume file records (its defaults then apply), if it is one. */
function presetOf(config: VNetConfig): VNetPreset | undefined {
  return (Object.keys(VNET_PRESETS) as VNetPreset[]).find((p) => JSON.stringify(vnetConfig({ preset: p })) === JSON.stringify(config));
}

/**
 * TrainArgs with every default filled in: --config's model, preprocessing and VNET_TRAIN_DEFAULTS (with
 * --resume, the file's config and preprocessing, and the defaults of --config or of the preset the file's
 * config is). Checks the arguments first; no file is read here.
 */
export function vnetTrainSettings(args: TrainArgs, resumeMetadata?: Record<string, string>): VNetTrainSettings {
  checkArgs(args);
  let config: VNetConfig;
  let pre: VNetPreprocessing;
  let preset = args.config ?? 'paper';
  if (resumeMetadata) {
    ({ config, preprocessing: pre } = vnetSettingsFrom(resumeMetadata, preset));
    preset = args.config ?? presetOf(config) ?? preset;
  } else {
    config = vnetConfig({ preset, ...(args.baseChannels ? { baseChannels: args.baseChannels } : {}) });
    pre = checkPreprocessing({ ...VNET_PREPROCESSING[preset], ...(args.patch ? { patch: args.patch } : {}), ...(args.spacing ? { spacing: args.spacing } : {}) });
  }
  const d = VNET_TRAIN_DEFAULTS[preset];
  const steps = args.steps ?? d.steps;
  if (steps === undefined) throw new CliError(`--steps is needed with --config ${preset} (only ${(Object.keys(VNET_TRAIN_DEFAULTS) as VNetPreset[]).filter((p) => VNET_TRAIN_DEFAULTS[p].steps).map((p) => `${p} has a default, ${VNET_TRAIN_DEFAULTS[p].steps}`).join('; ')})`);
  const sigma = args.deformSigma ?? d.deformSigma;
  return {
    preset,
    config,
    preprocessing: pre,
    steps,
    lr: args.lr ?? d.lr,
    lrSchedule: args.lrSchedule ?? d.lrSchedule,
    batchSize: args.batchSize ?? 1,
    seed: args.seed ?? 1,
    deformation: sigma === 0 ? null : { sigma, cells: args.deformCells ?? 2 },
    flip: args.flip ?? d.flip,
  };
}

/** Where --keep-best writes: W.safetensors -> W.best.safetensors. */
export const bestPath = (output: string): string => `${output.replace(/\.safetensors$/i, '')}.best.safetensors`;

/** The numbers and words of TrainArgs, checked (the CLI's parsers already did; programmatic callers may not have). */
function checkArgs(a: TrainArgs): void {
  if (a.images.length === 0 || a.images.length !== a.labels.length) throw new CliError(`give as many --label as --image, at least one of each (got ${a.images.length} and ${a.labels.length})`);
  if (a.steps !== undefined) wholeNumber('--steps', a.steps);
  if (a.lr !== undefined) positiveNumber('--lr', a.lr);
  if (a.batchSize !== undefined) wholeNumber('--batch-size', a.batchSize);
  if (a.baseChannels !== undefined) wholeNumber('--base-channels', a.baseChannels);
  if (a.patch) patchTriple('--patch', a.patch);
  if (a.spacing) positiveTriple('--spacing', a.spacing);
  if (a.seed !== undefined) wholeNumber('--seed', a.seed, 0);
  oneOf('--lr-schedule', a.lrSchedule ?? 'constant', ['constant', 'poly']);
  oneOf('--config', a.config ?? 'paper', Object.keys(VNET_PRESETS) as VNetPreset[]);
  if (a.deformSigma !== undefined) positiveNumber('--deform-sigma', a.deformSigma, { allowZero: true });
  if (a.deformCells !== undefined) wholeNumber('--deform-cells', a.deformCells);
  if (a.saveEvery !== undefined) wholeNumber('--save-every', a.saveEvery, 0);
  if (a.keepBest !== undefined) wholeNumber('--keep-best', a.keepBest, 0);
  if (a.bnCalibration !== undefined) wholeNumber('--bn-calibration', a.bnCalibration, 0);
}

export async function runTrain(args: TrainArgs): Promise<TrainReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // ---- everything that can be checked before any work
  checkArgs(args);
  const inputs = [...args.images.map((p) => ['training scan', p] as const), ...args.labels.map((p) => ['label map', p] as const)];
  checkOutput(args.output, { what: 'output weights', extensions: ['.safetensors'], inputs });
  if (args.keepBest) checkOutput(bestPath(args.output), { what: '--keep-best weights', extensions: ['.safetensors'], inputs });
  const resume = args.resume ? await readWeightsInput(args.resume, '--resume weights') : null;
  const settings = vnetTrainSettings(args, resume?.metadata);
  const { config, preprocessing: pre, steps, lr, lrSchedule: schedule, batchSize: bs, seed, deformation, flip } = settings;
  const P = pre.patch;
  if (bs * ((P[0] * P[1] * P[2]) / 4096) < 2) {
    throw new CliError(`batch norm in training needs 2 or more values per channel at 1/16 resolution; patch ${P.join('x')} with batch ${bs} has 1 (use --batch-size 2 or a larger --patch)`);
  }
  const volumes = args.images.map((img, i) => readVolumePair(img, args.labels[i]));

  // ---- the GPU part
  const t0 = performance.now();
  await openGpu(log);
  manualSeed(seed);
  const net = new VNet(config);
  let doneBefore = 0;
  if (resume) {
    const w = await load(resume.bytes);
    net.loadStateDict(w.tensors, { strict: true });
    for (const t of w.tensors.values()) t.dispose();
    doneBefore = Number(resume.metadata.steps ?? 0) || 0;
    log(`resumed ${args.resume} (${doneBefore} steps)`);
  }
  const cases: TrainingCase[] = [];
  for (let i = 0; i < volumes.length; i++) {
    const { volume: img, label: lbl } = volumes[i];
    const c = await prepareCase(img, lbl, pre);
    cases.push(c);
    log(`${basename(args.images[i])}: ${img.dims.join('x')} -> ${c.size.join('x')} at ${pre.spacing.join('x')} mm, ${c.foreground.length} foreground voxels`);
  }
  log(`V-Net ${config.variant}, ${config.baseChannels} base channels, patch ${P.join('x')}, batch ${bs}, Adam lr ${lr} (${schedule})`);
  const trainer = new VNetTrainer(net, { lr });
  const scheduler = schedule === 'poly' ? new PolyLR(trainer.optimizer, { maxSteps: steps }) : null;
  const random = patchRandom(seed);
  log(`${deformation ? `random deformation: ${deformation.cells}x${deformation.cells}x${deformation.cells} B-spline cells, sigma ${deformation.sigma} voxels` : 'random deformation off'}; random flips ${flip ? 'on' : 'off'}; ${steps} steps, seed ${seed}`);
  const history: StepResult[] = [];
  const metadata = () => ({ ...vnetMetadata(config, pre), steps: String(doneBefore + history.length), trained_on: args.images.map((p) => basename(p)).join(',') });
  const write = async (path = args.output, extra: Record<string, string> = {}) => {
    const bytes = await save(net.stateDict(), { metadata: { ...metadata(), ...extra } });
    const r = writeAtomic(path, bytes!);
    args.onWrite?.(path, doneBefore + history.length);
    return r;
  };
  const window = args.keepBest ?? 0;
  let bestDice = -1;
  const bar = args.progress === false ? null : new Progress({ unit: 'steps', total: steps, tty: stderrIsTerminal() });
  const say = (line: string) => (bar ? bar.print(line) : log(line));
  const tTrain = performance.now();
  try {
    for (let s = 0; s < steps && !args.signal?.aborted; s++) {
      const { images: x, labels: y } = sampleBatch(cases, P, bs, random, { deformation, flip });
      const r = await trainer.step(x, y);
      scheduler?.step();
      x.dispose();
      y.dispose();
      history.push(r);
      const rate = ((performance.now() - tTrain) / 1000 / (s + 1)).toFixed(2);
      bar?.update(s + 1, `loss ${r.loss.toFixed(4)}, dice ${r.dice.toFixed(3)}, ${rate} s/step`);
      if (args.saveEvery && (s + 1) % args.saveEvery === 0 && s + 1 < steps) await write();
      if (window && (s + 1) % window === 0) {
        const mean = history.slice(-window).reduce((a, h) => a + h.dice, 0) / window;
        if (mean > bestDice) {
          bestDice = mean;
          const steps = `${doneBefore + s + 2 - window}-${doneBefore + s + 1}`;
          await write(bestPath(args.output), { train_dice: mean.toFixed(4), train_dice_steps: steps });
          if (!args.json) say(`best mean training Dice ${mean.toFixed(3)} over steps ${steps}: wrote ${bestPath(args.output)}`);
        }
      }
    }
  } finally {
    bar?.end();
  }
  const dispose = () => {
    trainer.optimizer.dispose();
    net.dispose();
  };
  if (history.length === 0) {
    dispose();
    throw interrupted(`no step had finished: nothing was written${resume ? ` (${args.resume} is as it was)` : ''}`);
  }
  // segment-time statistics for the final weights: training's running statistics are a moving average
  // over flipped, deformed patches seen while the weights changed (measured: under-segmentation)
  const passes = config.batchNormMode === 'running' ? (args.bnCalibration ?? 24) : 0;
  if (passes) {
    const tCal = performance.now();
    net.calibrateBatchNorm(passes, () => {
      const { images, labels } = sampleBatch(cases, P, bs, random, { deformation: null, flip: false, foregroundProbability: 0 });
      labels.dispose();
      return images;
    });
    await runtime().sync();
    if (!args.json) log(`batch norm: running statistics of the final weights over ${passes} unaugmented random windows (${((performance.now() - tCal) / 1000).toFixed(1)} s)`);
  }
  const { replaced } = await write();
  const seconds = (performance.now() - t0) / 1000;
  dispose();
  if (history.length < steps) {
    throw interrupted(`${replaced ? 'replaced' : 'wrote'} ${args.output} with the weights after step ${doneBefore + history.length} of ${doneBefore + steps}; continue with --resume ${args.output}`);
  }
  const report: TrainReport = { steps, totalSteps: doneBefore + steps, seconds, adapter: runtime().adapterName, history, config: { ...config, preprocessing: pre } };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} after ${report.totalSteps} steps (${seconds.toFixed(1)} s)`);
  return report;
}

/** The options only some networks' training takes, by --model (the others are everyone's); another network's are refused. */
const OWN_OPTIONS: Record<string, readonly string[]> = {
  vnet: ['resume', 'lrSchedule', 'batchSize', 'baseChannels', 'patch', 'spacing', 'flip', 'deformSigma', 'deformCells', 'saveEvery', 'keepBest', 'bnCalibration'],
  medsam: ['weights', 'freezeEncoder', 'bboxShift', 'window', 'weightDecay', 'slices'],
  transunet: ['weights', 'window', 'weightDecay', 'slices', 'batchSize', 'classes'],
};
/** The flag as typed: the option `flip` is --flip when true, --no-flip when false. */
const flagOf = (name: string, value: unknown) => (name === 'flip' ? (value === false ? '--no-flip' : '--flip') : `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);

/** Refuses an option given with --model `model` that only other networks take ("--patch is for --model vnet"). */
function refuseOthers(model: string, o: TrainOptions, given: Given): void {
  const mine = OWN_OPTIONS[model];
  for (const k of new Set(Object.values(OWN_OPTIONS).flat())) {
    if (mine.includes(k) || !given(k)) continue;
    const takers = Object.keys(OWN_OPTIONS).filter((m) => OWN_OPTIONS[m].includes(k));
    const note = k === 'resume' ? ` (${model === 'medsam' ? 'MedSAM' : 'TransUNet'} continues from --weights)` : '';
    throw new CliError(`${flagOf(k, o[k])} is for --model ${takers.join(' or ')}${note}`);
  }
}

type TrainOptions = Record<string, unknown> & { model: string; image: string[]; label: string[]; steps?: number; output: string; config?: string; json?: boolean; progress: boolean };

/** --steps, which only V-Net's presets may leave out. */
function stepsFor(model: string, o: TrainOptions): number {
  if (o.steps === undefined) throw new CliError(`train --model ${model} needs --steps N`);
  return o.steps;
}
type Given = (name: string) => boolean;

/** The trainers by --model: each takes the parsed options and which of them the user gave, so another network is one more entry. */
const TRAINERS: Record<string, (o: TrainOptions, given: Given, signal: AbortSignal, onWrite: (path: string, steps: number) => void) => Promise<unknown>> = {
  vnet: (o, given, signal, onWrite) => {
    refuseOthers('vnet', o, given);
    return runTrain({ ...(o as unknown as TrainArgs), config: o.config as VNetPreset | undefined, images: o.image, labels: o.label, signal, onWrite });
  },
  medsam: (o, given, signal, onWrite) => {
    refuseOthers('medsam', o, given);
    return runMedSAMTrain({
      images: o.image,
      labels: o.label,
      steps: stepsFor(o.model, o),
      output: o.output,
      config: o.config,
      weights: o.weights as string | undefined,
      freezeEncoder: o.freezeEncoder as boolean | undefined,
      lr: given('lr') ? (o.lr as number) : undefined,
      weightDecay: o.weightDecay as number | undefined,
      bboxShift: o.bboxShift as number | undefined,
      window: o.window as string | undefined,
      slices: o.slices as string | undefined,
      seed: given('seed') ? (o.seed as number) : undefined,
      json: o.json,
      progress: o.progress,
      signal,
      onWrite,
    });
  },
  transunet: (o, given, signal, onWrite) => {
    refuseOthers('transunet', o, given);
    return runTransUNetTrain({
      images: o.image,
      labels: o.label,
      steps: stepsFor(o.model, o),
      output: o.output,
      config: o.config,
      weights: o.weights as string | undefined,
      classes: o.classes as string | undefined,
      window: o.window as string | undefined,
      slices: o.slices as string | undefined,
      batchSize: given('batchSize') ? (o.batchSize as number) : undefined,
      lr: given('lr') ? (o.lr as number) : undefined,
      weightDecay: o.weightDecay as number | undefined,
      seed: given('seed') ? (o.seed as number) : undefined,
      json: o.json,
      progress: o.progress,
      signal,
      onWrite,
    });
  },
};

export function register(program: Command): void {
  const collect = (v: string, prev: string[]) => [...prev, v];
  const whole = (option: string, min = 1) => (v: string) => wholeNumber(option, v, min);
  program
    .command('train')
    .description('train a model: V-Net on NIfTI scans and labels, fine-tune MedSAM on labelled NIfTI slices or PNG / JPEG images with masks, or TransUNet on CT volumes\' axial slices or PNG / JPEG images with label maps; writes safetensors with its config')
    .addOption(new Option('-m, --model <model>', 'network').choices(Object.keys(TRAINERS)).default('vnet'))
    .option('-c, --config <preset>', `V-Net: model and preprocessing preset (${Object.keys(VNET_PRESETS).join(', ')}; default paper). MedSAM: vit_b (default) or tiny. TransUNet: R50-ViT-B_16 (default) or tiny (a state dict in --weights decides)`)
    .option('--image <file>', 'training scan (.nii/.nii.gz; MedSAM and TransUNet also .png/.jpg); repeat with --label for more cases', collect, [])
    .option('--label <file>', 'its label map (MedSAM: nonzero is foreground; TransUNet: the classes; a grey PNG for an image)', collect, [])
    .option('--steps <n>', `optimisation steps (V-Net: default ${VNET_TRAIN_DEFAULTS.tiny.steps} with --config tiny, needed with the others; MedSAM, TransUNet: needed)`, whole('--steps'))
    .requiredOption('-o, --output <file>', 'output .safetensors (an existing file is replaced atomically)')
    .option('--resume <file>', 'V-Net: continue from weights written by medseg train (may be the -o file)')
    .option('--weights <file>', 'MedSAM: the weights to fine-tune (medsam_vit_b.pth, sam_vit_b_01ec64.pth, a training checkpoint or .safetensors). TransUNet: the ImageNet-21k R50+ViT-B_16.npz (encoder) or a trained .pth / .safetensors. Without it, random initialisation')
    .option('--classes <n>', 'TransUNet: classes of the segmentation head, background included (default 9, Synapse\'s; a state dict in --weights decides)')
    .option('--freeze-encoder', 'MedSAM: train the mask decoder only; each image embedding is computed once and cached')
    .option('--bbox-shift <px>', 'MedSAM: random box enlargement per side, at 1024 px (default 20, scaled to the input size)', (v) => positiveNumber('--bbox-shift', v, { allowZero: true }))
    .option('--window <w>', 'MedSAM: intensity window of NIfTI inputs, as segment --window (default: abdomen for CT, else mr). TransUNet: lo,hi scaled to [0, 1] (default -125,275 HU; 0,255 for images)')
    .option('--slices <a-b>', 'MedSAM, TransUNet: train on these slices of each volume only (default: MedSAM every slice whose label has foreground, TransUNet every slice)')
    .option('--weight-decay <w>', 'MedSAM: AdamW weight decay (default 0.01). TransUNet: SGD weight decay (default 1e-4)', (v) => positiveNumber('--weight-decay', v, { allowZero: true }))
    .option('--lr <lr>', `learning rate: V-Net Adam (default ${VNET_TRAIN_DEFAULTS.tiny.lr} with --config tiny, else ${VNET_TRAIN_DEFAULTS.paper.lr}), MedSAM AdamW (default 1e-4), TransUNet SGD's base lr of its poly schedule (default 0.01)`, (v) => positiveNumber('--lr', v))
    .addOption(new Option('--lr-schedule <schedule>', `V-Net: 'poly' decays the lr as (1 - step/steps)^0.9 over this run (default ${VNET_TRAIN_DEFAULTS.tiny.lrSchedule} with --config tiny, else ${VNET_TRAIN_DEFAULTS.paper.lrSchedule})`).choices(['constant', 'poly']))
    .option('--batch-size <n>', 'V-Net: patches per step (default 1). TransUNet: slices per step (default 4; train.py\'s is 24)', whole('--batch-size'), 1)
    .option('--base-channels <n>', "V-Net: override the preset's base channels", whole('--base-channels'))
    .option('--patch <d,h,w>', "V-Net: override the preset's patch (D,H,W voxels, multiples of 16)", (v) => patchTriple('--patch', v))
    .option('--spacing <x,y,z>', "V-Net: override the preset's voxel spacing (mm)", (v) => positiveTriple('--spacing', v))
    .option('--seed <n>', 'seed for initialisation and sampling (default 1; TransUNet 1234, train.py\'s)', whole('--seed', 0), 1)
    .option('--flip', 'V-Net: random flips along each axis (default with --config paper and monai)')
    .option('--no-flip', 'V-Net: no random flips (default with --config tiny)')
    .option('--deform-sigma <voxels>', `V-Net: random smooth deformation: std of the control displacements (0 turns it off; default ${VNET_TRAIN_DEFAULTS.tiny.deformSigma} with --config tiny, else ${VNET_TRAIN_DEFAULTS.paper.deformSigma})`, (v) => positiveNumber('--deform-sigma', v, { allowZero: true }))
    .option('--deform-cells <n>', 'V-Net: random smooth deformation: B-spline cells per axis', whole('--deform-cells'), 2)
    .option('--save-every <n>', 'V-Net: also write the weights every n steps', whole('--save-every', 0), 0)
    .option('--keep-best <n>', 'V-Net: also write W.best.safetensors: the weights after the n-step window with the highest mean training Dice', whole('--keep-best', 0), 0)
    .option('--bn-calibration <n>', "V-Net: batch norm's running statistics of the written weights from n forward passes over unaugmented random windows (0: training's moving averages)", whole('--bn-calibration', 0), 24)
    .option('--json', 'print the loss/Dice history and timing as JSON on stdout')
    .option('--no-progress', 'no progress on stderr')
    .action(async (opts: TrainOptions, command: Command) => {
      let kept = 'nothing was written';
      const interrupt = watchInterrupt({
        log: (l) => process.stderr.write(`${stderrIsTerminal() ? '\n' : ''}${l}\n`),
        stopping: 'finishing the current step, then writing the weights so far (Ctrl-C again to stop at once)',
        kept: () => kept,
      });
      try {
        await TRAINERS[opts.model](opts, (k) => command.getOptionValueSource(k) === 'cli', interrupt.signal, (path, steps) => {
          if (path === opts.output) kept = `${path} holds the weights after step ${steps}; nothing newer was written`;
        });
      } finally {
        interrupt.dispose();
      }
    });
}
