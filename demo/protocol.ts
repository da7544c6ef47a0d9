// The messages between the page and its GPU worker (demo/engine.worker.ts). Every request carries
// an id; the worker answers it with `done` (and a result) or `error`, and sends progress messages
// (training steps, stages) in between. Volumes travel as plain objects (structured clone).
import type { Volume } from '../src/io/index.js';
import type { KernelTime } from '../src/gpu/index.js';

export interface AdapterReport {
  name: string;
  kind: 'cpu' | 'gpu';
  description: string;
  features: string[];
  limits: Record<string, number>;
}

export interface MemoryReport {
  liveTensors: number;
  liveBytes: number;
  peakBytes: number;
  idleBytes: number;
}

/** the models whose weights the page saves */
export type SavedModel = 'vnet' | 'transunet';

export type Request =
  | { id: number; kind: 'init' }
  | { id: number; kind: 'setScan'; scan: Volume; label: Volume | null }
  /** trains until `steps` steps in all have run (resumes where a stop left off), then segments */
  | { id: number; kind: 'train'; steps: number; lr: number }
  | { id: number; kind: 'stop' }
  | { id: number; kind: 'segment' }
  | { id: number; kind: 'resetVNet' }
  /** the page's V-Net or TransUNet as safetensors bytes (with the metadata `medseg train` writes) */
  | { id: number; kind: 'saveWeights'; model: SavedModel }
  /** a V-Net .safetensors replaces the page's; the scan is segmented with it */
  | { id: number; kind: 'loadVNet'; file: File }
  | { id: number; kind: 'loadMedsamWeights'; file: File }
  /** a TransUNet checkpoint converted into OPFS: a trained one (.pth / .safetensors) is loaded to segment; the ImageNet-21k encoder (.npz, or its .safetensors) is kept to fine-tune from */
  | { id: number; kind: 'loadTransunetWeights'; file: File }
  /** fine-tunes TransUNet on the open scan's axial slices and label until `steps` steps in all (resumes the run a stop left; `fresh`: a new run, a new model), from random weights (tiny) or the loaded encoder; then segments */
  | { id: number; kind: 'transunetTrain'; steps: number; from: 'random' | 'encoder'; fresh: boolean }
  | { id: number; kind: 'transunetStop' }
  /** the loaded TransUNet slice by slice over the open scan */
  | { id: number; kind: 'transunetSegment' }
  /** whether model runs are profiled per kernel (timestamp queries; each dispatch then runs in a compute pass of its own) */
  | { id: number; kind: 'setProfiling'; on: boolean }
  /** memoryStats() of the worker's runtime, now */
  | { id: number; kind: 'memory' }
  /** asks the GPU for one buffer of `bytes` and waits for it (the out-of-memory path, for the console and the tests) */
  | { id: number; kind: 'allocate'; bytes: number }
  /** fine-tunes tiny MedSAM's mask decoder (encoder frozen) on one slice and its label mask (slice pixels) */
  | { id: number; kind: 'medsamFinetune'; imageKey: string; image: { data: Uint8Array; width: number; height: number }; mask: Uint8Array; steps: number }
  | {
      id: number;
      kind: 'medsam';
      /** identifies the image: the encoder runs only when it differs from the last one */
      imageKey: string;
      image: { data: Uint8Array; width: number; height: number };
      box: [number, number, number, number];
      points: { coords: [number, number][]; labels: number[] } | null;
    };

export type Event =
  /** one V-Net training step; dispatches: the compute passes it ran on the GPU */
  | { kind: 'step'; step: number; total: number; loss: number; dice: number; ms: number; dispatches: number; memory: MemoryReport }
  | { kind: 'medsamStep'; step: number; total: number; loss: number; dice: number; ms: number }
  /** one TransUNet training step: trainer.py's loss (0.5 CE + 0.5 Dice loss), its CE, the soft Dice (1 - the Dice loss: classes averaged, background included), pixel accuracy, the lr it used */
  | { kind: 'transunetStep'; step: number; total: number; loss: number; ce: number; dice: number; accuracy: number; lr: number; ms: number; dispatches: number; memory: MemoryReport }
  /** a training run replaced the page's TransUNet with its new model (sent before its first step, so the page names the right model even when the run fails) */
  | { kind: 'transunetModel'; model: TransunetWeightsResult }
  /** the kernels of one model run, most GPU time first (at most 8; source 'none': the device has no timestamp queries, `why` says so) */
  | { kind: 'profile'; run: string; source: 'timestamp' | 'none'; why: string; kernels: KernelTime[]; kernelCount: number; dispatches: number; gpuMs: number; wallMs: number }
  | { kind: 'stage'; id: number; stage: string; done?: number; total?: number }
  | { kind: 'done'; id: number; result?: unknown }
  /** oom: the device refused an allocation (OutOfMemoryError): what it was for and the bytes asked for */
  | { kind: 'error'; id: number; message: string; oom?: OutOfMemory };

export interface OutOfMemory {
  op: string;
  bytes: number;
}

export interface InitResult {
  adapter: AdapterReport;
  memory: MemoryReport;
  /** MedSAM weights converted on an earlier visit and loaded from OPFS */
  cachedWeights: WeightsResult | null;
  /** the TransUNet converted on an earlier visit, loaded from OPFS */
  cachedTransunet: TransunetWeightsResult | null;
  /** the TransUNet encoder (ImageNet-21k) converted on an earlier visit */
  cachedTransunetEncoder: TransunetEncoderResult | null;
  cacheError: string | null;
}

export interface TrainResult {
  steps: number;
  stopped: boolean;
  segmentation: SegmentResultMsg | null;
}

export interface SegmentResultMsg {
  labels: Uint8Array;
  dice: number | null;
  ms: number;
  windows: number;
  memory: MemoryReport;
}

export interface MedsamResult {
  mask: Uint8Array;
  width: number;
  height: number;
  encoderMs: number | null;
  decoderMs: number;
  iou: number;
  area: number;
  memory: MemoryReport;
}

export interface FinetuneResult {
  steps: number;
  loss: number;
  dice: number;
  msPerStep: number;
}

export interface WeightsResult {
  name: string;
  notes: string[];
  /** conversion to safetensors (0 when the cached conversion was used) */
  convertMs: number;
  /** reading the converted file into the model */
  loadMs: number;
  fromCache: boolean;
  tensors: number;
}

export interface TransunetWeightsResult extends WeightsResult {
  config: string;
  imgSize: number;
  numClasses: number;
}

export interface TransunetSegmentMsg {
  /** class ids, in the scan's voxel order */
  labels: Uint8Array;
  numClasses: number;
  /** voxels per class id */
  counts: number[];
  /** per class id, its Dice against the scan's label (null for class 0 and for a class in neither; the whole list null without a label) */
  dice: (number | null)[] | null;
  slices: number;
  ms: number;
  memory: MemoryReport;
}

/** An encoder-only TransUNet checkpoint (the ImageNet-21k .npz or its safetensors), kept to fine-tune from. */
export interface TransunetEncoderResult extends WeightsResult {
  config: string;
  /** the input size a run from it trains at (the configuration's default) */
  imgSize: number;
  /** the encoder's parameter count */
  parameters: number;
}

export type TransunetLoadResult = { model: TransunetWeightsResult } | { encoder: TransunetEncoderResult };

export interface TransunetTrainResult {
  steps: number;
  stopped: boolean;
  /** the model trained here, now the page's TransUNet */
  model: TransunetWeightsResult;
  segmentation: TransunetSegmentMsg | null;
}
