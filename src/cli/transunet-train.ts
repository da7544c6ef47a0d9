// `medseg train --model transunet --image IMG --label LBL [more pairs] [--weights W] [--config R50-ViT-B_16|tiny] [--classes N] --steps N -o W.safetensors`:
// fine-tunes TransUNet as trainer.py does (TransUNetTrainer: 0.5 cross-entropy + 0.5 Dice over the
// classes, SGD momentum 0.9, weight decay 1e-4, poly learning rate over this run's steps, base lr
// 0.01; RandomGenerator's augmentations: 90-degree rotations with flips, small rotations, then the
// zoom to the input size). Inputs are NIfTI volumes with label volumes (every axial slice, or those
// of --slices A-B, clipped to --window lo,hi, default -125,275 HU, and scaled to [0, 1] as segment
// does) or PNG / JPEG images with grey label PNGs (window 0,255); label values are the classes.
// Starts from --weights: the ImageNet-21k .npz (the encoder as load_from() initialises it, decoder
// and head random), or a trained state dict (.pth / .safetensors, whose shapes give the options);
// else from the random initialisation (said). Everything is checked before the GPU opens. Writes
// safetensors whose metadata records the options; Ctrl-C finishes the step and writes the weights so far.
import { basename } from 'node:path';
import { runtime } from '../gpu/runtime.js';
import { TRANSUNET_CONFIGS, TransUNet, transunetMetadata, type TransUNetConfigName } from '../models/transunet/transunet.js';
import { TRANSUNET_CT_WINDOW, transunetWindow } from '../models/transunet/inference.js';
import { TransUNetTrainer, type TrainingSlice, type TransUNetStep } from '../models/transunet/train.js';
import { labelClasses, trainingBatch, volumeTrainingSlices } from '../models/transunet/training-slices.js';
import { manualSeed, rng, tensor } from '../tensor.js';
import { CliError, oneOf, positiveNumber, wholeNumber } from './args.js';
import { checkOutput } from './files.js';
import { openGpu } from './gpu.js';
import { LAST_STEPS, lastStepsMean, trainSteps } from './train-loop.js';
import { readLabelImage, readVolumePair } from './training-pairs.js';
import { isImagePath, parseSliceRange, readImageInput } from './medsam-inputs.js';
import { parseRangeWindow } from './transunet-segment.js';
import { loadTransUNet, readTransUNetWeights } from './transunet-weights.js';

export interface TransUNetTrainArgs {
  images: string[];
  labels: string[];
  steps: number;
  output: string;
  /** starting weights: the ImageNet-21k .npz or a trained state dict (default: random initialisation) */
  weights?: string;
  /** 'R50-ViT-B_16' (default) or 'tiny'; starting weights' shapes decide (a different --config is refused) */
  config?: string;
  /** classes of the head (default: the state dict's, else 9 as train.py's Synapse setup) */
  classes?: number | string;
  /** lo,hi scaled to [0, 1] (default -125,275 HU for NIfTI, 0,255 for images) */
  window?: string | readonly [number, number];
  /** A-B: train on these slices of each volume only (inclusive; default all) */
  slices?: string | readonly number[];
  /** slices per step (default 4; train.py's is 24) */
  batchSize?: number | string;
  /** base learning rate of the poly schedule (default 0.01) */
  lr?: number;
  weightDecay?: number;
  /** initialisation and sampling (default 1234, train.py's) */
  seed?: number;
  progress?: boolean;
  json?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
  onWrite?: (path: string, steps: number) => void;
}

export interface TransUNetTrainReport {
  steps: number;
  seconds: number;
  adapter: string;
  options: { config: string; imgSize: number; numClasses: number; nSkip: number };
  slices: number;
  history: TransUNetStep[];
}

/** The training slices of one --image / --label pair: an image, or the axial slices of a volume, scaled by the window. */
function slicesOf(imagePath: string, labelPath: string, window: [number, number] | null, range: [number, number] | null, say: (l: string) => void): { slices: TrainingSlice[]; maxLabel: number } {
  const [lo, hi] = window ?? (isImagePath(imagePath) ? [0, 255] : TRANSUNET_CT_WINDOW);
  const scale = (v: ArrayLike<number>) => Float32Array.from(transunetWindow(v, [lo, hi]));
  // the pure readers' errors (a value that is not a class) as CLI errors, their messages unchanged
  const checked = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  };
  if (isImagePath(imagePath)) {
    if (range) throw new CliError(`--slices is for volumes; ${imagePath} is a 2-D image`);
    const { image, notes } = readImageInput(imagePath, 'training image');
    notes.forEach(say);
    if (image.channels !== 1) throw new CliError(`training image ${imagePath} is an RGB image; TransUNet trains on grey images`);
    const lbl = readLabelImage(labelPath, 'label map', imagePath, image, 'a label map must be grey, its values the classes');
    const l = checked(() => labelClasses(lbl.data, `label map ${labelPath}`));
    const [h, w] = [image.height, image.width];
    return { slices: [{ image: { data: scale(image.data), h, w }, label: { data: l.data, h, w } }], maxLabel: l.max };
  }
  const { volume: vol, label: lab } = readVolumePair(imagePath, labelPath);
  const [nx, ny, nz] = vol.dims;
  const [z0, z1] = range ?? [0, nz - 1];
  if (z1 >= nz) throw new CliError(`--slices ${z0}-${z1} reaches past the last slice of ${imagePath} (${nz} slices: 0-${nz - 1})`);
  const { slices, maxLabel } = checked(() => volumeTrainingSlices(vol, lab, { window: [lo, hi], range: [z0, z1], what: `label map ${labelPath}` }));
  say(`${basename(imagePath)}: ${z1 - z0 + 1} axial slice${z1 === z0 ? '' : 's'} (${nx}x${ny}), window [${lo}, ${hi}] scaled to [0, 1]`);
  return { slices, maxLabel };
}

export async function runTransUNetTrain(args: TransUNetTrainArgs): Promise<TransUNetTrainReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const say = (l: string) => !args.json && log(l);
  // ---- everything that can be checked before any work
  if (args.images.length === 0 || args.images.length !== args.labels.length) throw new CliError(`give as many --label as --image, at least one of each (got ${args.images.length} and ${args.labels.length})`);
  wholeNumber('--steps', args.steps);
  const names = Object.keys(TRANSUNET_CONFIGS) as TransUNetConfigName[];
  if (args.config !== undefined) oneOf('--config', args.config, names);
  const classesGiven = args.classes === undefined ? undefined : wholeNumber('--classes', args.classes, 2);
  const lr = args.lr === undefined ? 0.01 : positiveNumber('--lr', args.lr);
  const weightDecay = args.weightDecay === undefined ? 1e-4 : positiveNumber('--weight-decay', args.weightDecay, { allowZero: true });
  const batchSize = args.batchSize === undefined ? 4 : wholeNumber('--batch-size', args.batchSize);
  const seed = args.seed === undefined ? 1234 : wholeNumber('--seed', args.seed, 0);
  const window = args.window === undefined ? null : parseRangeWindow('--window', args.window);
  const range = args.slices === undefined ? null : parseSliceRange('--slices', args.slices);
  const inputs = [...args.images.map((p) => ['training image', p] as const), ...args.labels.map((p) => ['label', p] as const), ...(args.weights ? [['starting weights', args.weights] as const] : [])];
  checkOutput(args.output, { what: 'output weights', extensions: ['.safetensors'], inputs });
  // the starting weights, checked key by key: the .npz (encoder only; the configuration from its
  // shapes, the classes from --classes) or a state dict (every option from its shapes)
  const start = args.weights ? await readTransUNetWeights(args.weights, 'starting weights', { allowNpz: true, given: { config: args.config, numClasses: classesGiven } }) : null;
  const config = (start?.options.config ?? args.config ?? 'R50-ViT-B_16') as TransUNetConfigName;
  const options = start?.options ?? { config, imgSize: TRANSUNET_CONFIGS[config].defaultImgSize, numClasses: classesGiven ?? 9, nSkip: 3 };
  const S = options.imgSize;
  const t0 = performance.now();
  const slices: TrainingSlice[] = [];
  for (let i = 0; i < args.images.length; i++) {
    const r = slicesOf(args.images[i], args.labels[i], window, range, say);
    if (r.maxLabel >= options.numClasses) throw new CliError(`label map ${args.labels[i]} holds class ${r.maxLabel}, but the model has ${options.numClasses} classes (0-${options.numClasses - 1})${start && !start.npz ? ' as its starting weights say' : '; --classes sets the count'}`);
    slices.push(...r.slices);
  }
  say(`${slices.length} training slice${slices.length === 1 ? '' : 's'}, ${batchSize} per step, augmented as RandomGenerator does and zoomed to ${S}x${S}`);

  // ---- the GPU part
  await openGpu(log);
  manualSeed(seed);
  const net = start ? await loadTransUNet(start) : new TransUNet(options);
  if (start) for (const n of start.notes) say(`${args.weights}: ${n}`);
  if (start?.npz) say(`${args.weights}: the encoder initialised as load_from() does; the decoder and segmentation head start from their random initialisation`);
  else if (!start) say(`no --weights: TransUNet ${config} starts from its random initialisation (train.py starts the encoder from the ImageNet-21k R50+ViT-B_16.npz: --weights R50+ViT-B_16.npz)`);
  const trainer = new TransUNetTrainer(net, { baseLr: lr, maxSteps: args.steps, weightDecay });
  say(`TransUNet ${config} (${S}x${S} input, ${options.numClasses} classes, ${options.nSkip} skips), SGD momentum 0.9, weight decay ${weightDecay}, poly lr from ${lr} over ${args.steps} steps`);
  const dispose = () => {
    trainer.dispose();
    net.dispose();
  };
  const random = rng(seed);
  const { history, replaced } = await trainSteps<TransUNetStep>({
    steps: args.steps,
    output: args.output,
    progress: args.progress,
    signal: args.signal,
    step: async () => {
      const { images: x, labels: y } = trainingBatch(slices, S, batchSize, random);
      const images = tensor(x, [batchSize, 1, S, S]);
      const labels = tensor(y, [batchSize, S, S]);
      try {
        return await trainer.step(images, labels);
      } finally {
        images.dispose();
        labels.dispose();
      }
    },
    describe: (r) => `loss ${r.loss.toFixed(4)} (CE ${r.ce.toFixed(3)}, Dice loss ${r.dice.toFixed(3)}), pixel accuracy ${r.accuracy.toFixed(3)}, lr ${r.lr.toPrecision(3)}`,
    stateDict: () => net.stateDict(),
    metadata: (stepsDone) => ({
      ...transunetMetadata(net),
      steps: String(stepsDone),
      base_lr: String(lr),
      trained_on: args.images.map((p) => basename(p)).join(','),
      ...(args.weights ? { started_from: basename(args.weights) } : {}),
    }),
    onWrite: args.onWrite,
    dispose,
  });
  const seconds = (performance.now() - t0) / 1000;
  const report: TransUNetTrainReport = { steps: args.steps, seconds, adapter: runtime().adapterName, options: { ...options, config }, slices: slices.length, history };
  const mean = (f: (h: TransUNetStep) => number) => lastStepsMean(history, f);
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} after ${history.length} steps (${seconds.toFixed(1)} s): loss ${history[0].loss.toFixed(3)} -> ${mean((h) => h.loss).toFixed(3)}, pixel accuracy ${history[0].accuracy.toFixed(3)} -> ${mean((h) => h.accuracy).toFixed(3)} (mean of the last ${Math.min(LAST_STEPS, history.length)})`);
  return report;
}
