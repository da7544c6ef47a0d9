// Tensor: a strided view (shape, strides, element offset) of f32 storage in a GPU buffer.
// Views (reshape, permute, transpose, expand, narrow) share storage; storage is reference-counted
// and goes back to the buffer pool when its last view is disposed (or garbage collected).
// `read()` is the only sync point. Integer results (argmax, class labels) are stored as f32.
import { runtime } from './gpu/runtime.js';
import type { BufferPool } from './gpu/buffer-pool.js';
import type { GradNode } from './autograd.js';
import { track } from './scope.js';

export const MAX_DIMS = 8;

export class Storage {
  refs = 1;
  /** the pool (of the device) the buffer came from and goes back to */
  readonly pool: BufferPool;
  constructor(
    private readonly gpuBuffer: GPUBuffer,
    readonly bytes: number,
    pool?: BufferPool,
  ) {
    this.pool = pool ?? runtime().pool;
    liveStorages++;
  }
  /** The GPU buffer; throws once its device is lost (a new device cannot use it). */
  get buffer(): GPUBuffer {
    if (this.pool.lost) throw new Error(`medseg: this tensor belongs to a lost device (${this.pool.lost}); recreate it after \`await init()\``);
    return this.gpuBuffer;
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) {
      liveStorages--;
      this.pool.release(this.gpuBuffer);
    }
  }
}

let liveStorages = 0;
/** Tensors whose freeing is pending in the current freeIfUnused cascade. */
const pendingFrees: Tensor[] = [];
let freeing = false;
let backwardDepth = 0;
const deadInBackward: Tensor[] = [];

/** Called by backward() around its pass: dead-branch frees wait until it ends (see freeIfUnused). */
export function backwardStarted(): void {
  backwardDepth++;
}

export function backwardEnded(): void {
  if (--backwardDepth > 0) return;
  for (const t of deadInBackward.splice(0)) t.freeIfUnused();
}
let liveTensors = 0;
/** Tensors dropped without dispose() and reclaimed by the garbage collector, and the GPU bytes that freed, since start-up. */
let collectedTensors = 0;
let collectedBytes = 0;
const collected = new FinalizationRegistry<Storage>((s) => {
  liveTensors--;
  collectedTensors++;
  const live = s.pool.liveBytes;
  s.release();
  collectedBytes += live - s.pool.liveBytes;
});

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Normalises a possibly negative dim index. */
export function normDim(dim: number, ndim: number, what = 'dim'): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(d) || d < 0 || d >= Math.max(ndim, 1)) throw new RangeError(`${what} ${dim} is out of range for a ${ndim}-d tensor`);
  return d;
}

/**
 * The two ops this layer needs from src/ops, which sits above it: gradient accumulation (add) and
 * the contiguous copy read() makes of a strided view. src/ops/methods.ts provides them on import.
 */
export interface LayerBelowOps {
  add(a: Tensor, b: Tensor): Tensor;
  contiguous(t: Tensor): Tensor;
}

let opsAbove: LayerBelowOps | null = null;

export function provideOps(ops: LayerBelowOps): void {
  opsAbove = ops;
}

export function requireOps(): LayerBelowOps {
  if (!opsAbove) throw new Error("internal: medseg's ops are not loaded (import 'medseg', not the tensor module alone)");
  return opsAbove;
}

export interface TensorOptions {
  requiresGrad?: boolean;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly storage: Storage;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  /** Set for user-facing names in errors, e.g. a parameter's key. */
  name?: string;
  private disposed = false;

  constructor(storage: Storage, shape: readonly number[], strides?: readonly number[], offset = 0, requiresGrad = false) {
    if (shape.length > MAX_DIMS) throw new RangeError(`medseg supports tensors of up to ${MAX_DIMS} dims, got ${shapeStr(shape)}`);
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape ${shapeStr(shape)}`);
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.requiresGrad = requiresGrad;
    liveTensors++;
    collected.register(this, storage, this);
    track(this);
  }

  /** Allocates an uninitialised contiguous tensor. */
  static empty(shape: readonly number[], label?: string): Tensor {
    const n = numel(shape);
    const pool = runtime().pool;
    // the label is built only when the pool has no free buffer of the size and creates one
    const buffer = pool.acquire(Math.max(1, n) * 4, () => `${label ?? 'tensor'} ${shapeStr(shape)}`);
    return new Tensor(new Storage(buffer, n * 4, pool), shape);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }
  get buffer(): GPUBuffer {
    this.assertAlive();
    return this.storage.buffer;
  }

  assertAlive(): void {
    if (this.disposed) throw new Error(`medseg: use of a disposed tensor ${shapeStr(this.shape)}${this.name ? ` (${this.name})` : ''}`);
    if (this.storage.pool.lost) {
      throw new Error(`medseg: tensor ${shapeStr(this.shape)}${this.name ? ` (${this.name})` : ''} belongs to a lost device (${this.storage.pool.lost}); recreate it after \`await init()\``);
    }
  }

  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.ndim - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== expected) return false;
      expected *= this.shape[i];
    }
    return true;
  }

  /** A new handle on the same storage (retains it). */
  view(shape: readonly number[], strides: readonly number[], offset = this.offset): Tensor {
    this.assertAlive();
    return new Tensor(this.storage.retain(), shape, strides, offset);
  }

  /** Copies the tensor to the CPU. The only sync point. */
  async read(): Promise<Float32Array> {
    this.assertAlive();
    let t: Tensor = this;
    if (!this.isContiguous()) {
      const handle = this.view(this.shape, this.strides); // no graph: the copy records nothing
      t = requireOps().contiguous(handle);
      handle.dispose();
    }
    const bytes = await runtime().readBuffer(t.storage.buffer, t.offset * 4, t.size * 4);
    if (t !== this) t.dispose();
    return new Float32Array(bytes);
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got ${shapeStr(this.shape)}`);
    return (await this.read())[0];
  }

  /** How many recorded graph nodes take this tensor as an input or saved it (their backward rules may read it). */
  graphUses = 0;
  private disposeRequested = false;

  /**
   * Gives up this handle and returns its storage reference to the pool. A tensor that a recorded
   * gradient graph still needs (an op's output, or an input whose backward rule reads it) is
   * freed once backward() has used it, so model code can drop activations while training; if the
   * graph is dropped without backward, garbage collection frees it. Safe to call twice.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposeRequested = true;
    this.freeIfUnused();
  }

  /**
   * Frees the storage if dispose() was asked for and no live graph node needs this tensor. A
   * disposed tensor that no recorded node takes as an input, but whose own node has not run
   * backward, heads a dead branch of the graph (an output the loss does not use, such as MedSAM's
   * IoU head while training the masks): no backward can reach its node any more, so the node lets
   * go of its inputs and saved tensors now, and they are freed in turn if nothing else needs them
   * (before, that waited for garbage collection). While a backward pass runs, such a tensor may be
   * one whose gradient is still to be propagated (backward lets go of a node's inputs before it
   * reaches them), so the decision waits until the pass ends. Iterative: a long chain does not recurse.
   */
  freeIfUnused(): void {
    if (this.disposed || !this.disposeRequested || this.graphUses > 0) return; // the common case: nothing to free yet (freeOne's own test)
    pendingFrees.push(this);
    if (freeing) return;
    freeing = true;
    try {
      while (pendingFrees.length) pendingFrees.pop()!.freeOne();
    } finally {
      freeing = false;
    }
  }

  private freeOne(): void {
    if (this.disposed || !this.disposeRequested || this.graphUses > 0) return;
    const node = this.gradFn;
    const dead = node !== null && !node.freed;
    if (dead && backwardDepth > 0) {
      // a running backward may still reach it (its gradient can be pending): decide when it ends
      deadInBackward.push(this);
      return;
    }
    if (dead) node.freed = true;
    this.disposed = true;
    liveTensors--;
    collected.unregister(this);
    this.storage.release();
    this.gradFn = null;
    if (dead) {
      for (const t of [...node.inputs, ...node.saved]) {
        if (!t) continue;
        t.graphUses--;
        pendingFrees.push(t);
      }
    }
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/**
 * Live tensor handles, storages and GPU bytes (leak checks); peak is since the runtime opened or
 * resetPeakMemory. collectedTensors and collectedBytes count, since start-up, the tensors dropped
 * without dispose() that the garbage collector reclaimed and the bytes that freed: a leak check over
 * an interval compares liveTensors + collectedTensors (liveBytes + collectedBytes), since a
 * collection of earlier garbage can land inside it.
 */
export function memoryStats() {
  const p = runtime().pool.stats();
  return { liveTensors, collectedTensors, collectedBytes, liveStorages, liveBytes: p.liveBytes, peakBytes: p.peakLiveBytes, idleBytes: p.idleBytes };
}

/** Restarts memoryStats' peakBytes from the bytes live now (to measure the peak of one step). */
export function resetPeakMemory(): void {
  const p = runtime().pool;
  p.peakLiveBytes = p.liveBytes;
}

// ---- creation ----

type NestedArray = number | NestedArray[];

function flatten(data: NestedArray, shape: number[], depth = 0, out: number[] = []): number[] {
  if (typeof data === 'number') {
    if (depth === 0) shape.length = 0;
    out.push(data);
    return out;
  }
  if (shape.length <= depth) shape.push(data.length);
  else if (shape[depth] !== data.length) throw new Error('tensor(): ragged nested array');
  for (const d of data) flatten(d, shape, depth + 1, out);
  return out;
}

/** Uploads data. `shape` defaults to the nested array's shape or the typed array's length. */
export function tensor(data: ArrayLike<number> | NestedArray, shape?: readonly number[], options: TensorOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof data === 'number' || Array.isArray(data)) {
    inferred = [];
    flat = flatten(data as NestedArray, inferred);
  } else {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  }
  const s = shape ?? inferred;
  if (numel(s) !== flat.length) throw new Error(`tensor(): ${flat.length} values do not fill shape ${shapeStr(s)}`);
  const t = Tensor.empty(s);
  const f32 = flat instanceof Float32Array ? flat : Float32Array.from(flat);
  runtime().upload(t.storage.buffer, f32);
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
}

export function full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
  const t = Tensor.empty(shape);
  const n = t.size;
  if (n > 0) {
    runtime().dispatch({
      kernel: 'elementwise',
      entry: 'fill',
      params: fillParams(n, value),
      buffers: { out: t.storage.buffer },
      workgroups: Math.ceil(n / 256),
      context: `full(${shapeStr(shape)}, ${value})`,
    });
  }
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
}

function fillParams(n: number, value: number) {
  const z = new Array(8).fill(0);
  return { shape: z, a_strides: z, b_strides: z, c_strides: z, out_strides: z, ndim: 0, n, a_offset: 0, b_offset: 0, c_offset: 0, out_offset: 0, alpha: value, beta: 0 };
}

export const zeros = (shape: readonly number[], options?: TensorOptions) => full(shape, 0, options);
export const ones = (shape: readonly number[], options?: TensorOptions) => full(shape, 1, options);

export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new Error('arange(): step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return tensor(data, [n], options);
}

// ---- seeded random numbers (generated on the CPU so every adapter sees the same values) ----

let globalSeed = 0x5eed;

/** Seeds rand/randn calls that pass no seed of their own. */
export function manualSeed(seed: number): void {
  globalSeed = seed >>> 0;
}

/** splitmix32: a small, well-distributed 32-bit generator. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

function nextSeed(seed?: number): number {
  if (seed !== undefined) return seed;
  globalSeed = (Math.imul(globalSeed, 1664525) + 1013904223) >>> 0;
  return globalSeed;
}

export interface RandomOptions extends TensorOptions {
  seed?: number;
}

/** Uniform on [0, 1). */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  const r = rng(nextSeed(options.seed));
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = r();
  return tensor(data, shape, options);
}

/** Standard normal (Box-Muller). */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  const r = rng(nextSeed(options.seed));
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    data[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < data.length) data[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return tensor(data, shape, options);
}
