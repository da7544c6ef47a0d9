// `medseg train --model medsam --image IMG --label LBL [more pairs] [--weights W] [--config vit_b|tiny] [--freeze-encoder] --steps N -o W.safetensors`:
// fine-tunes MedSAM as train_one_gpu.py does (MedSAMTrainer: Dice + BCE on the upsampled logits,
// AdamW lr 1e-4, weight decay 0.01, the prompt encoder frozen). Inputs are NIfTI volumes with label
// volumes (windowed as segment windows them; every slice whose label has foreground is a training
// image, or those of --slices A-B) or PNG / JPEG images with grey PNG masks. Each image goes through MedSAM's pre-processing
// once, its mask is resized nearest to the model's input size, and each step takes a random image
// with its mask's bounding box moved out by a random 0..shift px per side (--bbox-shift, MedSAM's 20
// at 1024, scaled to the input size). With --freeze-encoder only the mask decoder trains and each
// image's embedding is computed once and kept on the GPU, so a step runs only the decoder. Starts from
// --weights (medsam_vit_b.pth, SAM's, a training checkpoint or medseg's safetensors), else from the
// model's random initialisation (said). Writes safetensors whose metadata records the config;
// Ctrl-C finishes the step and writes the weights so far.
import { basename } from 'node:path';
import { runtime } from '../gpu/runtime.js';
import { MedSAM, MEDSAM_CONFIGS, type MedSAMConfigName } from '../models/medsam/medsam.js';
import { medsamPreprocess, type ImageInput } from '../models/medsam/preprocess.js';
import { MedSAMTrainer, jitteredBox, type MedSAMStep } from '../models/medsam/train.js';
import { rng, tensor, type Tensor } from '../tensor.js';
import { CliError, oneOf, positiveNumber, wholeNumber } from './args.js';
import { checkOutput } from './files.js';
import { openGpu } from './gpu.js';
import { isImagePath, loadMedSAM, parseSliceRange, parseWindow, readImageInput, readMedSAMWeights, sliceImage, windowVolume, type MedSAMWeightsInput } from './medsam-inputs.js';
import { LAST_STEPS, lastStepsMean, trainSteps } from './train-loop.js';
import { readLabelImage, readVolumePair } from './training-pairs.js';

export interface MedSAMTrainArgs {
  images: string[];
  labels: string[];
  steps: number;
  output: string;
  /** starting weights (default: random initialisation) */
  weights?: string;
  config?: string;
  freezeEncoder?: boolean;
  /** AdamW learning rate (default 1e-4, train_one_gpu.py's) */
  lr?: number;
  weightDecay?: number;
  /** box jitter at 1024 px (default 20), scaled to the model's input size */
  bboxShift?: number;
  /** the intensity window of NIfTI inputs (as segment's --window) */
  window?: string;
  /** A-B: train on these slices of each volume only (inclusive; default all) */
  slices?: string | readonly number[];
  seed?: number;
  progress?: boolean;
  json?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
  onWrite?: (path: string, steps: number) => void;
}

export interface MedSAMTrainReport {
  steps: number;
  seconds: number;
  adapter: string;
  config: string;
  freezeEncoder: boolean;
  images: number;
  history: MedSAMStep[];
}

interface Sample {
  what: string;
  /** MedSAM's pre-processed image [3, S, S] */
  image: Float32Array;
  /** the mask at S x S (0/1) */
  mask: Float32Array;
}

/** A label plane (nonzero = foreground) resized nearest to S x S at pixel centres, as pre_CT_MR.py resizes masks (order 0). */
function maskAt(label: ArrayLike<number>, width: number, height: number, S: number): Float32Array {
  const m = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / S));
    for (let x = 0; x < S; x++) m[y * S + x] = label[sy * width + Math.min(width - 1, Math.floor(((x + 0.5) * width) / S))] ? 1 : 0;
  }
  return m;
}

/** The training images of one --image / --label pair: the image itself, or every labelled slice of a volume. */
function samplesOf(imagePath: string, labelPath: string, S: number, window: ReturnType<typeof parseWindow> | 'auto', range: [number, number] | null, say: (l: string) => void): Sample[] {
  const one = (image: ImageInput, label: ArrayLike<number>, what: string): Sample | null => {
    const mask = maskAt(label, image.width, image.height, S);
    return mask.some((v) => v) ? { what, image: medsamPreprocess(image, S), mask } : null;
  };
  if (isImagePath(imagePath)) {
    if (range) throw new CliError(`--slices is for volumes; ${imagePath} is a 2-D image`);
    const { image, notes } = readImageInput(imagePath, 'training image');
    notes.forEach(say);
    const lbl = readLabelImage(labelPath, 'label mask', imagePath, image, 'a mask must be grey (0 background, anything else foreground)');
    const s = one(image, lbl.data, basename(imagePath));
    if (!s) throw new CliError(`label mask ${labelPath} has no foreground at ${S}x${S}: nothing to train on`);
    return [s];
  }
  const { volume: vol, label: lab } = readVolumePair(imagePath, labelPath);
  const { grey, chosen } = windowVolume(vol, window);
  say(`${basename(imagePath)}: ${chosen}`);
  const [nx, ny, nz] = vol.dims;
  const [z0, z1] = range ?? [0, nz - 1];
  if (z1 >= nz) throw new CliError(`--slices ${z0}-${z1} reaches past the last slice of ${imagePath} (${nz} slices: 0-${nz - 1})`);
  const out: Sample[] = [];
  for (let z = z0; z <= z1; z++) {
    const s = one(sliceImage(grey, vol.dims, z), lab.data.subarray(z * nx * ny, (z + 1) * nx * ny), `${basename(imagePath)} slice ${z}`);
    if (s) out.push(s);
  }
  if (!out.length) throw new CliError(`label map ${labelPath} has no foreground on ${range ? `slices ${z0}-${z1}` : 'any slice'}: nothing to train on`);
  return out;
}

export async function runMedSAMTrain(args: MedSAMTrainArgs): Promise<MedSAMTrainReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const say = (l: string) => !args.json && log(l);
  // ---- everything that can be checked before any work
  if (args.images.length === 0 || args.images.length !== args.labels.length) throw new CliError(`give as many --label as --image, at least one of each (got ${args.images.length} and ${args.labels.length})`);
  wholeNumber('--steps', args.steps);
  if (args.config !== undefined) oneOf('--config', args.config, Object.keys(MEDSAM_CONFIGS) as MedSAMConfigName[]);
  const lr = args.lr === undefined ? 1e-4 : positiveNumber('--lr', args.lr);
  const weightDecay = args.weightDecay === undefined ? 0.01 : positiveNumber('--weight-decay', args.weightDecay, { allowZero: true });
  const shift1024 = args.bboxShift === undefined ? 20 : positiveNumber('--bbox-shift', args.bboxShift, { allowZero: true });
  const seed = args.seed === undefined ? 1 : wholeNumber('--seed', args.seed, 0);
  const window = args.window === undefined ? 'auto' : parseWindow('--window', args.window);
  const range = args.slices === undefined ? null : parseSliceRange('--slices', args.slices);
  const inputs = [...args.images.map((p) => ['training image', p] as const), ...args.labels.map((p) => ['label', p] as const), ...(args.weights ? [['starting weights', args.weights] as const] : [])];
  checkOutput(args.output, { what: 'output weights', extensions: ['.safetensors'], inputs });
  const start: MedSAMWeightsInput | null = args.weights ? await readMedSAMWeights(args.weights, args.config, 'starting weights') : null;
  const config = start?.config ?? ((args.config ?? 'vit_b') as MedSAMConfigName);
  const S = MEDSAM_CONFIGS[config].imageSize;
  const shift = Math.round((shift1024 * S) / 1024);
  const t0 = performance.now();
  const samples = args.images.flatMap((img, i) => samplesOf(img, args.labels[i], S, window, range, say));
  say(`${samples.length} training image${samples.length === 1 ? '' : 's'} (${[...new Set(samples.map((s) => s.what.replace(/ slice \d+$/, '')))].length} input${args.images.length === 1 ? '' : 's'}) at ${S}x${S}, boxes jittered by 0..${shift} px per side`);

  // ---- the GPU part
  await openGpu(log);
  let net: MedSAM;
  if (start) {
    net = await loadMedSAM(start);
    for (const n of start.notes) say(`${args.weights}: ${n}`);
  } else {
    net = new MedSAM({ config });
    say(`no --weights: MedSAM ${config} starts from its random initialisation (fine-tuning normally starts from medsam_vit_b.pth or SAM's sam_vit_b_01ec64.pth)`);
  }
  const freeze = args.freezeEncoder ?? false;
  const trainer = new MedSAMTrainer(net, { lr, weightDecay, freezeEncoder: freeze });
  const masks: Tensor[] = samples.map((s) => tensor(s.mask, [1, 1, S, S]));
  let embeddings: Tensor[] = [];
  const dispose = () => {
    trainer.dispose();
    for (const t of [...masks, ...embeddings]) t.dispose();
    net.dispose();
  };
  const tEmbed = performance.now();
  if (freeze) {
    // the frozen encoder's embeddings, once per image, kept on the GPU
    embeddings = samples.map((s) => {
      const x = tensor(s.image, [1, 3, S, S]);
      const e = trainer.embed(x);
      x.dispose();
      return e;
    });
    await runtime().sync();
    say(`encoder frozen: ${embeddings.length} image embeddings computed once (${((performance.now() - tEmbed) / 1000).toFixed(1)} s); each step runs the mask decoder only`);
  }
  say(`MedSAM ${config}, AdamW lr ${lr}, weight decay ${weightDecay}, training ${freeze ? 'the mask decoder' : 'the image encoder and mask decoder'}`);
  const random = rng(seed);
  const { history, replaced } = await trainSteps<MedSAMStep>({
    steps: args.steps,
    output: args.output,
    progress: args.progress,
    signal: args.signal,
    step: async () => {
      const k = Math.floor(random() * samples.length);
      const box = jitteredBox(samples[k].mask, S, S, shift, random)!;
      const boxes = tensor([box], [1, 4]);
      const images = freeze ? null : tensor(samples[k].image, [1, 3, S, S]);
      try {
        return await trainer.step({ ...(freeze ? { embedding: embeddings[k] } : { images: images! }), boxes, masks: masks[k] });
      } finally {
        boxes.dispose();
        images?.dispose();
      }
    },
    describe: (r) => `loss ${r.loss.toFixed(4)}, dice ${r.dice.toFixed(3)}`,
    stateDict: () => net.stateDict(),
    metadata: (stepsDone) => ({ model: 'medsam', medsam_config: config, steps: String(stepsDone), freeze_encoder: String(freeze), lr: String(lr), trained_on: args.images.map((p) => basename(p)).join(','), ...(args.weights ? { started_from: basename(args.weights) } : {}) }),
    onWrite: args.onWrite,
    dispose,
  });
  const seconds = (performance.now() - t0) / 1000;
  const report: MedSAMTrainReport = { steps: args.steps, seconds, adapter: runtime().adapterName, config, freezeEncoder: freeze, images: samples.length, history };
  const mean = (f: (h: MedSAMStep) => number) => lastStepsMean(history, f);
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} after ${history.length} steps (${seconds.toFixed(1)} s): loss ${history[0].loss.toFixed(3)} -> ${mean((h) => h.loss).toFixed(3)}, training Dice ${history[0].dice.toFixed(3)} -> ${mean((h) => h.dice).toFixed(3)} (mean of the last ${Math.min(LAST_STEPS, history.length)})`);
  return report;
}
