// The demo's GPU worker: everything that runs medseg (WebGPU device, the tiny V-Net and its
// trainer, the tiny MedSAM predictor, a TransUNet loaded or fine-tuned here, and an ImageNet-21k
// TransUNet encoder to fine-tune from) lives here, so training never blocks the page. Requests run
// one at a time through a queue; training is a chain of one-step jobs, so a stop (or a MedSAM box)
// is handled between two steps, and a later train request resumes with the same weights and Adam
// state. V-Net settings are scripts/demo-spleen.mjs's: the `tiny` preset trained from random weights
// (seed 7) at 6.4 x 6.4 x 10 mm on one 16 x 32 x 32 patch, Adam lr 1e-2, Dice loss, no flips or
// deformation; segmentation uses batch norm on the scan's own statistics. Errors go back with their
// message, and an out-of-memory one with the op and bytes the device refused. `memory` and
// `allocate` serve the page's console handle (window.medsegDebug) and the end-to-end test.
import { init, manualSeed, memoryStats, models, OutOfMemoryError, Tensor, tensor, weights, type Runtime } from '../src/index.js';
import { profileKernels, timestampSupport } from '../src/gpu/index.js';
import type { Volume } from '../src/io/index.js';
import { numel } from '../src/tensor.js';
import { encoderSchema, npzNotLoaded } from '../src/weights/schemas/transunet-npz.js';
import type { Event, FinetuneResult, InitResult, MedsamResult, MemoryReport, Request, SavedModel, SegmentResultMsg, TrainResult, TransunetEncoderResult, TransunetLoadResult, TransunetSegmentMsg, TransunetTrainResult, TransunetWeightsResult, WeightsResult } from './protocol.js';

const post = (e: Event, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(e, transfer);

let rt: Runtime | null = null;
let scan: Volume | null = null;
let label: Volume | null = null;

interface VNetState {
  net: models.VNet;
  trainer: models.VNetTrainer;
  pre: models.VNetPreprocessing;
  /** the open scan and label on the model grid (made when training first needs it) */
  c: models.TrainingCase | null;
  random: () => number;
}
let vnet: VNetState | null = null;
let stopRequested = false;

let medsam: models.MedSAM | null = null;
let predictor: models.MedSAMPredictor | null = null;
let embeddedKey: string | null = null;
let medsamTrainer: models.MedSAMTrainer | null = null;

let transunet: models.TransUNet | null = null;

const memory = (): MemoryReport => {
  const m = memoryStats();
  return { liveTensors: m.liveTensors, liveBytes: m.liveBytes, peakBytes: m.peakBytes, idleBytes: m.idleBytes };
};

/** a profile is running (profiles do not nest); the page's "time each kernel" switch */
let profiling = false;
let profilingOn = true;

/**
 * Runs one model run with each kernel's GPU time measured (timestamp queries, where the device has
 * them) and posts its top kernels to the page's panel. A run inside another's profile is timed as
 * part of it; with the switch off the run is not profiled (no pass per dispatch, no readback).
 */
async function profiled<T>(run: string, fn: () => Promise<T>): Promise<T> {
  if (profiling || !profilingOn) return fn();
  profiling = true;
  const t0 = performance.now();
  try {
    const p = await profileKernels(fn);
    const k = p.kernels;
    post({
      kind: 'profile',
      run,
      source: p.source,
      why: timestampSupport().why,
      kernels: k.slice(0, 8),
      kernelCount: k.length,
      dispatches: k.reduce((a, x) => a + x.calls, 0),
      gpuMs: k.reduce((a, x) => a + x.ms, 0),
      wallMs: performance.now() - t0,
    });
    return p.result;
  } finally {
    profiling = false;
  }
}

// one GPU job at a time
let queue: Promise<unknown> = Promise.resolve();
function job<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn);
  queue = run.catch(() => undefined);
  return run;
}

/**
 * A training run's step loop, V-Net's and TransUNet's alike: one step a GPU job until `done()`
 * reaches `target`; between steps a stop, or the run being replaced (a new scan or model), ends it.
 * `step` runs one step and returns its progress message (given the step's time and dispatches).
 * Returns whether the run ended early.
 */
async function runSteps(target: number, done: () => number, live: () => boolean, stopped: () => boolean, step: (t: { ms: () => number; dispatches: () => number }) => Promise<Event>): Promise<boolean> {
  while (done() < target) {
    if (stopped() || !live()) return true;
    await job(async () => {
      if (!live()) return;
      const t0 = performance.now();
      const d0 = rt!.dispatches;
      post(await step({ ms: () => performance.now() - t0, dispatches: () => rt!.dispatches - d0 }));
    });
  }
  return !live();
}

function dispose(s: VNetState | null): void {
  if (!s) return;
  s.trainer.optimizer.dispose();
  s.net.dispose();
}

const NEEDS_LABEL = 'training needs a label for the scan: open the scan together with its label file (a second .nii/.nii.gz whose name contains "label", "seg" or "mask")';

async function vnetState(): Promise<VNetState> {
  if (!scan) throw new Error('no scan is open');
  if (!vnet) {
    if (!label) throw new Error(NEEDS_LABEL);
    manualSeed(7);
    const config = models.vnetConfig({ preset: 'tiny' });
    const pre = models.checkPreprocessing({ ...models.VNET_PREPROCESSING.tiny, spacing: [6.4, 6.4, 10], patch: [16, 32, 32] });
    const net = new models.VNet(config);
    vnet = { net, trainer: new models.VNetTrainer(net, { lr: 1e-2 }), pre, c: null, random: models.patchRandom(7) };
  }
  return vnet;
}

/** The page's V-Net and the metadata `medseg segment` reads its settings from (config, preprocessing). */
function vnetToSave(): { net: models.VNet; metadata: Record<string, string> } {
  if (!vnet) throw new Error('no V-Net to save: train one first');
  return { net: vnet.net, metadata: { ...models.vnetMetadata(vnet.net.config, vnet.pre), steps: String(vnet.trainer.steps), trained_on: 'the demo page' } };
}

/** One of the page's models as safetensors, the file `medseg train` writes for it, with its metadata (the V-Net's settings; TransUNet's options and run). */
async function saveWeights(model: SavedModel): Promise<Uint8Array> {
  const { net, metadata } = model === 'vnet' ? vnetToSave() : transunetToSave();
  return (await weights.save(net.stateDict(), { metadata }))!;
}

/** A V-Net from a .safetensors (as `medseg train` and `npm run demo:spleen` write), replacing the page's; then segments. */
async function loadVNet(id: number, file: File): Promise<SegmentResultMsg> {
  if (!scan) throw new Error('no scan is open');
  const w = await weights.load(file);
  const { config, preprocessing } = models.vnetSettingsFrom(w.metadata, 'tiny');
  const net = new models.VNet(config);
  try {
    net.loadStateDict(w.tensors, { strict: true });
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  dispose(vnet);
  vnet = { net, trainer: new models.VNetTrainer(net, { lr: 1e-2 }), pre: preprocessing, c: null, random: models.patchRandom(7) };
  return segment(id);
}

async function segment(id: number): Promise<SegmentResultMsg> {
  const s = await vnetState();
  const t0 = performance.now();
  s.net.setBatchNormMode('batch');
  const seg = await profiled('V-Net segmentation', () =>
    models.segmentVolume(s.net, scan!, s.pre, { onProgress: (p) => post({ kind: 'stage', id, stage: `segment: ${p.stage}`, done: p.done, total: p.total }) }),
  );
  const labels = Uint8Array.from(seg.labels, (v) => (v > 0 ? 1 : 0));
  // the foreground's Dice against the label (1 where both are empty)
  const dice = label ? (models.labelOverlap(labels, label.data).dice ?? 1) : null;
  return { labels, dice, ms: performance.now() - t0, windows: seg.windows, memory: memory() };
}

async function train(id: number, steps: number, lr: number): Promise<TrainResult> {
  stopRequested = false;
  const s = await job(vnetState);
  if (!s.c) {
    if (!label) throw new Error(NEEDS_LABEL);
    const c = await job(() => models.prepareCase(scan!, label!, s.pre));
    s.c = c;
  }
  const c = s.c;
  for (const g of s.trainer.optimizer.paramGroups) g.lr = lr;
  // a stop, or a new scan (which replaced this V-Net), ends the run between steps
  const ended = await runSteps(steps, () => s.trainer.steps, () => vnet === s, () => stopRequested, async (t) => {
    const { images, labels } = models.sampleBatch([c], s.pre.patch as [number, number, number], 1, s.random, { flip: false, deformation: null });
    const r = await profiled('V-Net training step', () => s.trainer.step(images, labels));
    images.dispose();
    labels.dispose();
    return { kind: 'step', step: s.trainer.steps, total: steps, loss: r.loss, dice: r.dice, ms: t.ms(), dispatches: t.dispatches(), memory: memory() };
  });
  if (ended) return { steps: s.trainer.steps, stopped: true, segmentation: null };
  post({ kind: 'stage', id, stage: 'segmenting the scan' });
  const seg = await job(() => segment(id));
  return { steps: s.trainer.steps, stopped: false, segmentation: seg };
}

function medsamModel(): models.MedSAM {
  if (!medsam) {
    manualSeed(1);
    medsam = new models.MedSAM({ config: 'tiny' });
  }
  return medsam;
}

/** Runs the image encoder unless the predictor holds this image's embedding; returns its time (null when cached). */
async function embedImage(r: { id: number; imageKey: string; image: { data: Uint8Array; width: number; height: number } }): Promise<number | null> {
  predictor ??= await medsamModel().predictor();
  let encoderMs: number | null = null;
  if (embeddedKey !== r.imageKey) {
    post({ kind: 'stage', id: r.id, stage: 'MedSAM image encoder', done: 0, total: 2 });
    const t0 = performance.now();
    await profiled('MedSAM image encoder', () => predictor!.setImage({ data: r.image.data, width: r.image.width, height: r.image.height, channels: 1 }));
    encoderMs = performance.now() - t0;
    embeddedKey = r.imageKey;
    post({ kind: 'stage', id: r.id, stage: 'MedSAM mask decoder', done: 1, total: 2 });
  }
  return encoderMs;
}

async function medsamPredict(r: Extract<Request, { kind: 'medsam' }>): Promise<MedsamResult> {
  const encoderMs = await embedImage(r);
  medsamModel().eval();
  const t1 = performance.now();
  const p = await profiled('MedSAM mask decoder', () => predictor!.predict({ box: r.box, points: r.points }));
  p.lowResLogitsTensor.dispose();
  const decoderMs = performance.now() - t1;
  let area = 0;
  for (const v of p.masks) area += v;
  return { mask: p.masks, width: p.shape.width, height: p.shape.height, encoderMs, decoderMs, iou: p.iou[0], area, memory: memory() };
}

/**
 * Fine-tunes the decoder on one slice, as test/models/medsam-train.node.test.ts does: the encoder
 * frozen (its embedding is the predictor's), AdamW lr 3e-3 (training Dice 0.89 after 30 steps on
 * the spleen slice, 0.98 after 70, where 1e-3 needs 50 for 0.84), the label at S x S by nearest
 * neighbour, boxes the label's bounding box moved out by 0..2 px per side (MedSAM's 20 px at 1024).
 */
async function medsamFinetune(r: Extract<Request, { kind: 'medsamFinetune' }>): Promise<FinetuneResult> {
  await embedImage(r);
  const net = medsamModel();
  const S = net.config.imageSize;
  const { width: W, height: H } = r.image;
  const mask = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) mask[y * S + x] = r.mask[Math.floor(((y + 0.5) * H) / S) * W + Math.floor(((x + 0.5) * W) / S)] > 0 ? 1 : 0;
  if (!mask.some((v) => v > 0)) throw new Error('the label is empty on this slice: pick a slice with label');
  medsamTrainer ??= new models.MedSAMTrainer(net, { freezeEncoder: true, lr: 3e-3 });
  const masks = tensor(mask, [1, 1, S, S]);
  const random = models.patchRandom(13);
  let last = { loss: NaN, dice: NaN };
  const t0 = performance.now();
  try {
    await profiled(`MedSAM fine-tuning (${r.steps} decoder steps)`, async () => {
      for (let i = 0; i < r.steps; i++) {
        const t = performance.now();
        const box = models.jitteredBox(mask, S, S, 2, random)!;
        const boxes = tensor([box], [1, 4]);
        last = await medsamTrainer!.step({ embedding: predictor!.imageEmbedding!, boxes, masks });
        boxes.dispose();
        post({ kind: 'medsamStep', step: i + 1, total: r.steps, loss: last.loss, dice: last.dice, ms: performance.now() - t });
      }
    });
  } finally {
    masks.dispose();
    net.eval();
  }
  return { steps: r.steps, loss: last.loss, dice: last.dice, msPerStep: (performance.now() - t0) / r.steps };
}

// The converted weights live in OPFS (weights.convertCached); a small file there per slot (MedSAM,
// a trained TransUNet, a TransUNet encoder to fine-tune) names the last conversion loaded, so the
// next visit loads it without asking.
type CachedModel = 'medsam' | 'transunet' | 'transunet-encoder';
const lastFile = (slot: CachedModel) => `${slot}-last.txt`;
const modelOf = (slot: CachedModel) => (slot === 'medsam' ? 'medsam' : 'transunet');
async function weightsDir(): Promise<FileSystemDirectoryHandle | null> {
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle('medseg-weights', { create: true });
  } catch {
    return null;
  }
}

/** Converts a dropped checkpoint to safetensors in OPFS for `slot` (or takes the cached conversion) against the first of `schemas` it fits, with progress, and remembers it as the slot's last. */
async function convertAndRemember(id: number, file: File, slot: CachedModel, schemas: weights.Schema[], stage: string): Promise<{ file: Blob; fromCache: boolean; notes: string[]; convertMs: number }> {
  const t0 = performance.now();
  const model = modelOf(slot);
  const c = await weights.convertCached(file, {
    model,
    schemas,
    onProgress: (p) => post({ kind: 'stage', id, stage, done: p.index + 1, total: p.count }),
  });
  const convertMs = performance.now() - t0;
  const dir = await weightsDir();
  if (dir) {
    const w = await (await dir.getFileHandle(lastFile(slot), { create: true })).createWritable();
    await w.write(JSON.stringify({ key: weights.cacheKey(file, { model }), name: file.name }));
    await w.close();
  }
  return { file: c.file, fromCache: c.fromCache, notes: c.plan?.notes ?? [], convertMs };
}

/** The conversion loaded last time for `model`, from OPFS (null when there is none). */
async function lastConverted(model: CachedModel): Promise<{ file: File; name: string } | null> {
  const dir = await weightsDir();
  if (!dir) return null;
  try {
    const last = JSON.parse(await (await (await dir.getFileHandle(lastFile(model))).getFile()).text()) as { key: string; name: string };
    return { file: await (await dir.getFileHandle(last.key)).getFile(), name: last.name };
  } catch {
    return null;
  }
}

/** Converts a dropped checkpoint to safetensors in OPFS (or takes the cached conversion) and loads it into tiny MedSAM. */
async function loadMedsamWeights(id: number, file: File): Promise<WeightsResult> {
  const net = medsamModel();
  const c = await convertAndRemember(id, file, 'medsam', [net.schema()], `converting ${file.name}`);
  const t1 = performance.now();
  const r = await net.loadWeights(c.file);
  predictor?.reset();
  embeddedKey = null;
  return { name: file.name, notes: [...c.notes, ...r.notes], convertMs: c.convertMs, loadMs: performance.now() - t1, fromCache: c.fromCache, tensors: net.stateDict().size };
}

/** At start: the weights converted on an earlier visit, loaded from OPFS (null when there are none). */
async function restoreMedsamWeights(): Promise<WeightsResult | null> {
  const last = await lastConverted('medsam');
  if (!last) return null;
  const net = medsamModel();
  const t0 = performance.now();
  const r = await net.loadWeights(last.file);
  return { name: last.name, notes: r.notes, convertMs: 0, loadMs: performance.now() - t0, fromCache: true, tensors: net.stateDict().size };
}

// ---- TransUNet: a trained checkpoint (.pth / .safetensors) loaded to segment; the ImageNet-21k
// encoder (the .npz, or a safetensors made from it) kept as the start of a fine-tuning run; and
// that run, "Train TransUNet here": trainer.py's TransUNetTrainer (0.5 CE + 0.5 Dice, SGD momentum
// 0.9, poly lr from 0.01) on the open scan's axial slices and its label, 4 slices a step through
// RandomGenerator, as `medseg train --model transunet` (seed 1234), from random weights (the tiny
// configuration) or from the loaded encoder (its configuration, decoder and head random). ----

/** The keys the ImageNet-21k .npz fills (load_from()): TransUNet `config`'s encoder at its default input size. */
const encoderSchemaOf = (config: models.TransUNetConfigName): weights.Schema =>
  encoderSchema(models.transunetSchema({ config, imgSize: models.TRANSUNET_CONFIGS[config].defaultImgSize, numClasses: 2, nSkip: 3 }));
const ENCODER_CONFIGS: models.TransUNetConfigName[] = ['tiny', 'R50-ViT-B_16'];
const encoderSchemas = () => ENCODER_CONFIGS.map(encoderSchemaOf);

/** An encoder-only TransUNet checkpoint, converted: the start of a fine-tuning run. */
interface TransunetEncoder {
  file: Blob;
  name: string;
  config: models.TransUNetConfigName;
}
let transunetEncoder: TransunetEncoder | null = null;

/** What a checkpoint holds: a trained TransUNet (a model made for its shapes) or the encoder only. */
async function transunetFor(file: Blob, name: string): Promise<{ net: models.TransUNet } | { encoderOnly: true }> {
  const ck = await weights.openCheckpoint(weights.blobSource(file, name));
  const keys = [...ck.tensors.keys()];
  if (ck.format === 'npz' || !keys.some(npzNotLoaded)) return { encoderOnly: true };
  return { net: new models.TransUNet(models.transunetOptionsFromShapes(new Map([...ck.tensors].map(([k, r]) => [k, r.shape])))) };
}

/** The encoder configuration of a converted encoder file (its keys and shapes against each configuration's). */
async function encoderOf(file: Blob, name: string): Promise<TransunetEncoder> {
  const plan = await weights.planConversion(weights.blobSource(file, name), { model: 'transunet', schemas: encoderSchemas() });
  return { file, name, config: ENCODER_CONFIGS.find((c) => plan.schema.id === encoderSchemaOf(c).id)! };
}

const encoderResult = (e: TransunetEncoder, notes: string[], convertMs: number, loadMs: number, fromCache: boolean): TransunetEncoderResult => {
  const c = models.TRANSUNET_CONFIGS[e.config];
  const schema = encoderSchemaOf(e.config);
  let parameters = 0;
  for (const s of schema.tensors.values()) parameters += numel(s);
  return { name: e.name, notes, convertMs, loadMs, fromCache, tensors: schema.tensors.size, config: e.config, imgSize: c.defaultImgSize, parameters };
};

/** Fills a new TransUNet's encoder from a converted encoder file (decoder.* and segmentation_head.* keep their initialisation, as load_from()). */
async function loadEncoder(net: models.TransUNet, e: TransunetEncoder): Promise<void> {
  try {
    await net.loadWeights(e.file, { encoderOnly: true });
  } catch (err) {
    throw new Error(`${e.name}: the encoder does not fit TransUNet '${e.config}': ${(err as Error).message}`);
  }
}

/** A fine-tuning run on the open scan: its model (the page's TransUNet while the run lasts), trainer and slices. */
interface TransunetRun {
  net: models.TransUNet;
  trainer: models.TransUNetTrainer;
  /** steps taken by the run's earlier trainers ("Train more" past the schedule's end starts a new poly schedule over the added steps) */
  before: number;
  slices: models.TrainingSlice[];
  random: () => number;
  /** 'random' or the encoder's name */
  from: string;
}
let tuRun: TransunetRun | null = null;
let tuStopRequested = false;
const TU_BATCH = 4;
const TU_LR = 0.01;
const TU_SEED = 1234;
const tuSteps = (run: TransunetRun) => run.before + run.trainer.steps;

/** What the page's TransUNet's saved file records of where it came from, once no run of it is going: the run it was trained in, or the checkpoint it was loaded from. */
let transunetProvenance: Record<string, string> = {};
/** A run's part of the metadata, as `medseg train --model transunet` writes it (trained_on: the page, as the V-Net's). */
const runProvenance = (run: TransunetRun): Record<string, string> => ({
  steps: String(tuSteps(run)),
  base_lr: String(TU_LR),
  trained_on: 'the demo page',
  ...(run.from === 'random' ? {} : { started_from: run.from }),
});

function endRun(): void {
  if (!tuRun) return;
  if (tuRun.net === transunet) transunetProvenance = runProvenance(tuRun);
  tuRun.trainer.dispose();
  tuRun.net.zeroGrad();
  tuRun = null;
}

/** `net` becomes the page's TransUNet (`provenance`: where it came from, for its saved file): the one before it is freed, with a fine-tuning run of another model. */
function setTransunet(net: models.TransUNet, provenance: Record<string, string>): void {
  if (tuRun && tuRun.net !== net) endRun();
  if (transunet && transunet !== net) transunet.dispose();
  transunet = net;
  transunetProvenance = provenance;
}

/**
 * The page's TransUNet and the metadata `medseg train --model transunet` writes: its options
 * (config, input size, classes, skips; `medseg segment --model transunet` reads them from the
 * shapes, which they match) and its run (steps, base lr, the encoder it started from).
 */
function transunetToSave(): { net: models.TransUNet; metadata: Record<string, string> } {
  const net = transunet;
  if (!net) throw new Error('no TransUNet to save: train one here or load one first');
  const provenance = tuRun && tuRun.net === net ? runProvenance(tuRun) : transunetProvenance;
  return { net, metadata: { ...models.transunetMetadata(net), ...provenance } };
}

const transunetResult = (net: models.TransUNet, name: string, notes: string[], convertMs: number, loadMs: number, fromCache: boolean): TransunetWeightsResult => ({
  name,
  notes,
  convertMs,
  loadMs,
  fromCache,
  tensors: net.stateDict().size,
  config: net.configName,
  imgSize: net.imgSize,
  numClasses: net.numClasses,
});

/** Converts a dropped TransUNet checkpoint into OPFS (or takes the cached conversion): a trained one is loaded to segment, an encoder-only one kept to fine-tune from. */
async function loadTransunetWeights(id: number, file: File): Promise<TransunetLoadResult> {
  const made = await transunetFor(file, file.name);
  if (!('net' in made)) {
    const c = await convertAndRemember(id, file, 'transunet-encoder', encoderSchemas(), `TransUNet: converting ${file.name}`);
    const t1 = performance.now();
    transunetEncoder = await encoderOf(c.file, file.name);
    return { encoder: encoderResult(transunetEncoder, c.notes, c.convertMs, performance.now() - t1, c.fromCache) };
  }
  const net = made.net;
  try {
    const c = await convertAndRemember(id, file, 'transunet', [net.schema()], `TransUNet: converting ${file.name}`);
    const t1 = performance.now();
    const r = await net.loadWeights(c.file);
    setTransunet(net, { loaded_from: file.name });
    return { model: transunetResult(net, file.name, [...c.notes, ...r.notes], c.convertMs, performance.now() - t1, c.fromCache) };
  } catch (e) {
    if (transunet !== net) net.dispose();
    throw e;
  }
}

/** At start: the trained TransUNet and the encoder converted on earlier visits, from OPFS (null where there is none). */
async function restoreTransunetWeights(): Promise<TransunetWeightsResult | null> {
  const last = await lastConverted('transunet');
  if (!last) return null;
  const t0 = performance.now();
  const made = await transunetFor(last.file, last.name);
  if (!('net' in made)) return null;
  const r = await made.net.loadWeights(last.file);
  setTransunet(made.net, { loaded_from: last.name });
  return transunetResult(made.net, last.name, r.notes, 0, performance.now() - t0, true);
}
async function restoreTransunetEncoder(): Promise<TransunetEncoderResult | null> {
  const last = await lastConverted('transunet-encoder');
  if (!last) return null;
  const t0 = performance.now();
  transunetEncoder = await encoderOf(last.file, last.name);
  return encoderResult(transunetEncoder, [], 0, performance.now() - t0, true);
}

const NEEDS_LABEL_TU = NEEDS_LABEL.replace('training needs', 'TransUNet training needs');

/** The run that trains to `target` steps from `from`: the current one unless `fresh` (resumed; a new poly schedule past its end), else a new model on the open scan's slices. */
async function transunetRun(from: 'random' | 'encoder', target: number, fresh: boolean): Promise<TransunetRun> {
  if (!scan) throw new Error('no scan is open');
  const key = from === 'random' ? 'random' : (transunetEncoder?.name ?? '');
  if (tuRun && tuRun.from === key && !fresh) {
    if (target > tuRun.before + tuRun.trainer.scheduler.maxSteps) {
      tuRun.before += tuRun.trainer.steps;
      tuRun.trainer.dispose();
      tuRun.trainer = new models.TransUNetTrainer(tuRun.net, { baseLr: TU_LR, maxSteps: target - tuRun.before });
    }
    return tuRun;
  }
  if (!label) throw new Error(NEEDS_LABEL_TU);
  if (from === 'encoder' && !transunetEncoder) throw new Error('no TransUNet encoder is loaded: load the ImageNet-21k .npz (or its .safetensors) first, or train from random weights');
  // every axial slice in the CT window [-125, 275] HU; the label's values are the classes (the spleen label: 0 and 1, two classes)
  const { slices, maxLabel } = models.volumeTrainingSlices(scan, label, { what: 'the label' });
  const numClasses = Math.max(2, maxLabel + 1);
  manualSeed(TU_SEED);
  const net = new models.TransUNet({ config: from === 'encoder' ? transunetEncoder!.config : 'tiny', numClasses });
  try {
    if (from === 'encoder') await loadEncoder(net, transunetEncoder!);
  } catch (e) {
    net.dispose();
    throw e;
  }
  setTransunet(net, {});
  tuRun = { net, trainer: new models.TransUNetTrainer(net, { baseLr: TU_LR, maxSteps: target }), before: 0, slices, random: models.patchRandom(TU_SEED), from: key };
  return tuRun;
}

/** Trains the page's TransUNet until `target` steps in all have run (a stop ends it between steps), then segments the scan with it. */
async function transunetTrain(id: number, target: number, from: 'random' | 'encoder', fresh: boolean): Promise<TransunetTrainResult> {
  tuStopRequested = false;
  post({ kind: 'stage', id, stage: 'TransUNet: preparing the slices' });
  const run = await job(() => transunetRun(from, target, fresh));
  const model = () => transunetResult(run.net, from === 'random' ? 'TransUNet tiny trained here' : `TransUNet trained here from ${run.from}`, [], 0, 0, false);
  post({ kind: 'transunetModel', model: model() });
  const ended = await runSteps(target, () => tuSteps(run), () => tuRun === run, () => tuStopRequested, async (t) => {
    const S = run.net.imgSize;
    const b = models.trainingBatch(run.slices, S, TU_BATCH, run.random);
    const images = tensor(b.images, [TU_BATCH, 1, S, S]);
    const labels = tensor(b.labels, [TU_BATCH, S, S]);
    try {
      const r = await profiled('TransUNet training step', () => run.trainer.step(images, labels));
      return { kind: 'transunetStep', step: tuSteps(run), total: target, loss: r.loss, ce: r.ce, dice: 1 - r.dice, accuracy: r.accuracy, lr: r.lr, ms: t.ms(), dispatches: t.dispatches(), memory: memory() };
    } finally {
      images.dispose();
      labels.dispose();
    }
  });
  if (ended) return { steps: tuSteps(run), stopped: true, model: model(), segmentation: null };
  const segmentation = await job(() => transunetSegment(id));
  return { steps: tuSteps(run), stopped: false, model: model(), segmentation };
}

/** TransUNet slice by slice over the open scan (the CT window [-125, 275] HU, 4 slices a batch): uint8 class labels, and each class's Dice against the label. */
async function transunetSegment(id: number): Promise<TransunetSegmentMsg> {
  if (!scan) throw new Error('no scan is open');
  if (!transunet) throw new Error('TransUNet has no weights: train it here, or load a trained TransUNet (.pth / .safetensors) first');
  const t0 = performance.now();
  const net = transunet;
  const r = await profiled('TransUNet segmentation', () =>
    models.segmentVolumeSlices(net, scan!, {
      window: models.TRANSUNET_CT_WINDOW,
      batchSize: 4,
      onProgress: (p) => post({ kind: 'stage', id, stage: 'TransUNet: slices', done: p.done, total: p.total }),
    }),
  );
  const C = net.numClasses;
  const counts = new Array<number>(C).fill(0);
  for (const v of r.labels) counts[v]++;
  // per class c >= 1: 2 |pred = c and label = c| / (|pred = c| + |label = c|); null where neither
  // has it. Only where the label has the model's class count: a loaded model's ids need not be the
  // label's (Synapse's 9 classes against the spleen label's 2)
  let dice: (number | null)[] | null = null;
  let maxLabel = 0;
  if (label) for (const v of label.data) if (v > maxLabel) maxLabel = v;
  if (label && Math.max(2, maxLabel + 1) === C) dice = counts.map((_, c) => (c === 0 ? null : models.labelOverlap(r.labels, label!.data, c).dice));
  return { labels: r.labels, numClasses: C, counts, dice, slices: r.slices, ms: performance.now() - t0, memory: memory() };
}

async function handle(r: Request): Promise<{ result?: unknown; transfer?: Transferable[] }> {
  switch (r.kind) {
    case 'init': {
      rt = await init();
      void rt.device.lost.then((info) => post({ kind: 'error', id: 0, message: `the GPU device was lost (${info.reason || 'unknown reason'}: ${info.message}); reload the page to start again` }));
      const limits: Record<string, number> = {};
      for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'])
        limits[k] = (rt.limits as unknown as Record<string, number>)[k];
      let cachedWeights: WeightsResult | null = null;
      let cacheError: string | null = null;
      try {
        cachedWeights = await job(restoreMedsamWeights);
      } catch (e) {
        cacheError = `the cached MedSAM weights did not load: ${e instanceof Error ? e.message : String(e)}`;
      }
      let cachedTransunet: TransunetWeightsResult | null = null;
      try {
        cachedTransunet = await job(restoreTransunetWeights);
      } catch (e) {
        cacheError = `${cacheError ? `${cacheError}; ` : ''}the cached TransUNet weights did not load: ${e instanceof Error ? e.message : String(e)}`;
      }
      let cachedTransunetEncoder: TransunetEncoderResult | null = null;
      try {
        cachedTransunetEncoder = await job(restoreTransunetEncoder);
      } catch (e) {
        cacheError = `${cacheError ? `${cacheError}; ` : ''}the cached TransUNet encoder did not load: ${e instanceof Error ? e.message : String(e)}`;
      }
      const result: InitResult = {
        adapter: { name: rt.adapterName, kind: rt.adapterKind, description: rt.adapterInfo.description, features: [...rt.features], limits },
        memory: memory(),
        cachedWeights,
        cachedTransunet,
        cachedTransunetEncoder,
        cacheError,
      };
      return { result };
    }
    case 'setScan':
      await job(async () => {
        scan = r.scan;
        label = r.label;
        dispose(vnet);
        vnet = null;
        // a TransUNet run trains on its scan's slices: the model stays the page's TransUNet, its training ends
        endRun();
        predictor?.reset();
        embeddedKey = null;
      });
      return {};
    case 'resetVNet':
      await job(async () => {
        dispose(vnet);
        vnet = null;
      });
      return {};
    case 'train': {
      const result = await train(r.id, r.steps, r.lr);
      return { result, transfer: result.segmentation ? [result.segmentation.labels.buffer] : [] };
    }
    case 'stop':
      stopRequested = true;
      return {};
    case 'segment': {
      const result = await job(() => segment(r.id));
      return { result, transfer: [result.labels.buffer] };
    }
    case 'medsam': {
      const result = await job(() => medsamPredict(r));
      return { result, transfer: [result.mask.buffer] };
    }
    case 'saveWeights': {
      const bytes = await job(() => saveWeights(r.model));
      return { result: bytes, transfer: [bytes.buffer] };
    }
    case 'loadVNet': {
      const result = await job(() => loadVNet(r.id, r.file));
      return { result, transfer: [result.labels.buffer] };
    }
    case 'medsamFinetune':
      return { result: await job(() => medsamFinetune(r)) };
    case 'loadMedsamWeights':
      return { result: await job(() => loadMedsamWeights(r.id, r.file)) };
    case 'loadTransunetWeights':
      return { result: await job(() => loadTransunetWeights(r.id, r.file)) };
    case 'transunetTrain': {
      const result = await transunetTrain(r.id, r.steps, r.from, r.fresh);
      return { result, transfer: result.segmentation ? [result.segmentation.labels.buffer] : [] };
    }
    case 'transunetStop':
      tuStopRequested = true;
      return {};
    case 'transunetSegment': {
      const result = await job(() => transunetSegment(r.id));
      return { result, transfer: [result.labels.buffer] };
    }
    case 'setProfiling':
      profilingOn = r.on;
      return {};
    case 'memory':
      return { result: await job(async () => memory()) };
    case 'allocate':
      await job(() => allocate(r.bytes));
      return {};
  }
}

/** One buffer of `bytes` from the pool, waited for at a sync point and freed: a refusal is the runtime's OutOfMemoryError. */
async function allocate(bytes: number): Promise<void> {
  if (!(Number.isInteger(bytes) && bytes > 0 && bytes % 4 === 0)) throw new Error(`allocate: bytes must be a positive multiple of 4, got ${bytes}`);
  const t = Tensor.empty([bytes / 4], 'medsegDebug.allocate');
  try {
    await rt!.sync();
  } finally {
    t.dispose();
  }
}

self.onmessage = (e: MessageEvent<Request>) => {
  const r = e.data;
  handle(r).then(
    ({ result, transfer }) => post({ kind: 'done', id: r.id, result }, transfer ?? []),
    // an out-of-memory error says what the allocation was for and its bytes; the runtime has
    // released its idle buffers by then, so the next request can succeed
    (err: unknown) =>
      post({ kind: 'error', id: r.id, message: err instanceof Error ? err.message : String(err), oom: err instanceof OutOfMemoryError ? { op: err.op, bytes: err.bytes } : undefined }),
  );
};
