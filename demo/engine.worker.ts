// The demo's GPU worker: everything that runs medseg (WebGPU device, the tiny V-Net and its
// trainer, the tiny MedSAM predictor, a loaded TransUNet) lives here, so training never blocks the page. Requests run
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
import type { Event, FinetuneResult, InitResult, MedsamResult, MemoryReport, Request, SegmentResultMsg, TrainResult, TransunetSegmentMsg, TransunetWeightsResult, WeightsResult } from './protocol.js';

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
 * Frees a model's GPU memory at once: its parameters' gradients first (a tensor's dispose() leaves
 * its .grad to the garbage collector, so a trained model's last gradients outlived it until a
 * collection: a V-Net load after training held 130 gradient tensors, 11 MiB, into the next
 * segmentation), then every state-dict tensor.
 */
function freeModel(net: { zeroGrad(): void; stateDict(): Map<string, Tensor> }): void {
  net.zeroGrad();
  for (const t of net.stateDict().values()) t.dispose();
}

function dispose(s: VNetState | null): void {
  if (!s) return;
  s.trainer.optimizer.dispose();
  freeModel(s.net);
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

/** The trained V-Net as safetensors, with the metadata `medseg segment` reads (config, preprocessing). */
async function saveVNet(): Promise<Uint8Array> {
  if (!vnet) throw new Error('no V-Net to save: train one first');
  const metadata = { ...models.vnetMetadata(vnet.net.config, vnet.pre), steps: String(vnet.trainer.steps), trained_on: 'the demo page' };
  return (await weights.save(vnet.net.stateDict(), { metadata }))!;
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
  let dice: number | null = null;
  if (label) {
    let inter = 0;
    let a = 0;
    let b = 0;
    for (let i = 0; i < labels.length; i++) {
      const m = labels[i] > 0;
      const r = label.data[i] > 0;
      if (m && r) inter++;
      if (m) a++;
      if (r) b++;
    }
    dice = a + b ? (2 * inter) / (a + b) : 1;
  }
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
  while (s.trainer.steps < steps) {
    // a stop, or a new scan (which replaced this V-Net), ends the run between steps
    if (stopRequested || vnet !== s) return { steps: s.trainer.steps, stopped: true, segmentation: null };
    await job(async () => {
      if (vnet !== s) return;
      const t0 = performance.now();
      const d0 = rt!.dispatches;
      const { images, labels } = models.sampleBatch([c], s.pre.patch as [number, number, number], 1, s.random, { flip: false, deformation: null });
      const r = await profiled('V-Net training step', () => s.trainer.step(images, labels));
      images.dispose();
      labels.dispose();
      post({ kind: 'step', step: s.trainer.steps, total: steps, loss: r.loss, dice: r.dice, ms: performance.now() - t0, dispatches: rt!.dispatches - d0, memory: memory() });
    });
  }
  if (vnet !== s) return { steps: s.trainer.steps, stopped: true, segmentation: null };
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

// The converted weights live in OPFS (weights.convertCached); a small file there per model names
// the last conversion loaded, so the next visit loads it without asking.
type CachedModel = 'medsam' | 'transunet';
const lastFile = (model: CachedModel) => `${model}-last.txt`;
async function weightsDir(): Promise<FileSystemDirectoryHandle | null> {
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle('medseg-weights', { create: true });
  } catch {
    return null;
  }
}

/** Converts a dropped checkpoint to safetensors in OPFS for `model` (or takes the cached conversion), with progress, and remembers it as the model's last. */
async function convertAndRemember(id: number, file: File, model: CachedModel, schema: weights.Schema, stage: string): Promise<{ file: Blob; fromCache: boolean; notes: string[]; convertMs: number }> {
  const t0 = performance.now();
  const c = await weights.convertCached(file, {
    model,
    schemas: [schema],
    onProgress: (p) => post({ kind: 'stage', id, stage, done: p.index + 1, total: p.count }),
  });
  const convertMs = performance.now() - t0;
  const dir = await weightsDir();
  if (dir) {
    const w = await (await dir.getFileHandle(lastFile(model), { create: true })).createWritable();
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
  const c = await convertAndRemember(id, file, 'medsam', net.schema(), `converting ${file.name}`);
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

const ENCODER_ONLY =
  "it holds TransUNet's ImageNet-21k encoder only (what load_from() reads), with no trained decoder or segmentation head, so it cannot segment until it is fine-tuned; load a trained TransUNet instead (train.py's .pth, or its .safetensors from medseg convert / medseg train)";

/** A TransUNet made for a checkpoint: its options (config, input size, classes, skips) read from the shapes; an encoder-only checkpoint is refused. */
async function transunetFor(file: Blob, name: string): Promise<models.TransUNet> {
  const ck = await weights.openCheckpoint(weights.blobSource(file, name));
  if (ck.format === 'npz') throw new Error(`${name} is an .npz (the R50+ViT-B_16.npz layout): ${ENCODER_ONLY}`);
  const keys = [...ck.tensors.keys()];
  if (keys.some((k) => k.startsWith('transformer.')) && !keys.some((k) => k.startsWith('decoder.') || k.startsWith('segmentation_head.')))
    throw new Error(`${name} has TransUNet encoder keys and no decoder.* or segmentation_head.* (converted from the ImageNet-21k .npz?): ${ENCODER_ONLY}`);
  return new models.TransUNet(models.transunetOptionsFromShapes(new Map([...ck.tensors].map(([k, r]) => [k, r.shape]))));
}

function setTransunet(net: models.TransUNet): void {
  if (transunet) freeModel(transunet);
  transunet = net;
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

/** Converts a trained TransUNet checkpoint (.pth / .safetensors) into OPFS (or takes the cached conversion) and loads it. */
async function loadTransunetWeights(id: number, file: File): Promise<TransunetWeightsResult> {
  const net = await transunetFor(file, file.name);
  try {
    const c = await convertAndRemember(id, file, 'transunet', net.schema(), `TransUNet: converting ${file.name}`);
    const t1 = performance.now();
    const r = await net.loadWeights(c.file);
    setTransunet(net);
    return transunetResult(net, file.name, [...c.notes, ...r.notes], c.convertMs, performance.now() - t1, c.fromCache);
  } catch (e) {
    if (transunet !== net) for (const t of net.stateDict().values()) t.dispose();
    throw e;
  }
}

/** At start: the TransUNet converted on an earlier visit, from OPFS (null when there is none). */
async function restoreTransunetWeights(): Promise<TransunetWeightsResult | null> {
  const last = await lastConverted('transunet');
  if (!last) return null;
  const t0 = performance.now();
  const net = await transunetFor(last.file, last.name);
  const r = await net.loadWeights(last.file);
  setTransunet(net);
  return transunetResult(net, last.name, r.notes, 0, performance.now() - t0, true);
}

/** TransUNet slice by slice over the open scan (the CT window [-125, 275] HU, 4 slices a batch): uint8 class labels. */
async function transunetSegment(id: number): Promise<TransunetSegmentMsg> {
  if (!scan) throw new Error('no scan is open');
  if (!transunet) throw new Error('TransUNet has no weights: load a trained TransUNet (.pth / .safetensors) first');
  const t0 = performance.now();
  const net = transunet;
  const r = await profiled('TransUNet segmentation', () =>
    models.segmentVolumeSlices(net, scan!, {
      window: models.TRANSUNET_CT_WINDOW,
      batchSize: 4,
      onProgress: (p) => post({ kind: 'stage', id, stage: 'TransUNet: slices', done: p.done, total: p.total }),
    }),
  );
  const counts = new Array<number>(transunet.numClasses).fill(0);
  for (const v of r.labels) counts[v]++;
  return { labels: r.labels, numClasses: transunet.numClasses, counts, slices: r.slices, ms: performance.now() - t0, memory: memory() };
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
      const result: InitResult = {
        adapter: { name: rt.adapterName, kind: rt.adapterKind, description: rt.adapterInfo.description, features: [...rt.features], limits },
        memory: memory(),
        cachedWeights,
        cachedTransunet,
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
    case 'saveVNet': {
      const bytes = await job(saveVNet);
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
