// The runtime: one device, its kernel registry and buffer pool, and the command batch. Dispatches,
// uploads and copies are encoded into one command encoder (uniforms into a per-batch arena) and
// submitted at sync points (read, flush); errors from validation, compilation and out-of-memory
// are collected and thrown at the next sync point with the kernel, op and shapes that caused them.
// Failures of the device itself: an allocation the device refuses becomes an OutOfMemoryError at the
// next sync point (the pool has released its idle buffers by then, so the next call can succeed);
// a lost device is reported, `init()` opens a new one, and tensors of the lost one refuse to be used.
import { openDevice, type AdapterChoice, type DeviceInfo } from './device.js';
import { BufferPool, Usage, fmtBytes, type FailedAllocation } from './buffer-pool.js';
import { KernelRegistry, packParams, type Overrides, type ParamValue, type Pipeline } from './kernels.js';

export interface DispatchSpec {
  kernel: string;
  entry: string;
  overrides?: Overrides;
  /** uniform values by Params field name */
  params?: Record<string, ParamValue>;
  /**
   * storage buffers by binding variable name; null for a binding this call does not use (an absent
   * bias, running statistics in eval mode): the runtime binds a shared placeholder there. Every
   * binding of the entry point must be named, so a forgotten one is an error, not a silent zero.
   */
  buffers: Record<string, GPUBuffer | null>;
  /** workgroup counts; a single number is spread over x and y to stay under the per-dimension limit */
  workgroups: number | [number, number, number];
  /** what to name in error messages: the op and its shapes */
  context?: string;
}

const ARENA_SIZE = 64 * 1024;

/** The device refused memory: `op` is what the allocation was for, `bytes` what it asked for. */
export class OutOfMemoryError extends Error {
  readonly op: string;
  readonly bytes: number;
  constructor(failed: FailedAllocation[], adapter: string, followers: string[]) {
    const f = failed[0];
    super(
      `medseg: out of GPU memory: the device refused ${fmtBytes(f.bytes)} (${f.bytes} bytes) for ${f.label} on ${adapter} ` +
        `(this process held ${fmtBytes(f.liveBytes)} in live tensors and ${fmtBytes(f.idleBytes)} in idle pooled buffers; ` +
        `the idle ones have been released, so a smaller or repeated call can succeed). Device: ${f.message.split('\n')[0]}` +
        (failed.length > 1 ? `\n  ${failed.length - 1} more allocation(s) failed after it: ${failed.slice(1).map((x) => `${fmtBytes(x.bytes)} for ${x.label}`).join(', ')}` : '') +
        (followers.length ? `\n  ${followers.length} GPU error(s) followed from it (commands that used the missing buffer), the first: ${followers[0].split('\n')[0]}` : ''),
    );
    this.name = 'OutOfMemoryError';
    this.op = f.label;
    this.bytes = f.bytes;
  }
}

/** Why a runtime's device was lost. */
export interface DeviceLoss {
  reason: string;
  message: string;
}

export function lostDeviceMessage(loss: DeviceLoss): string {
  return (
    `the WebGPU device was lost (${loss.reason}${loss.message ? `: ${loss.message.split('\n')[0]}` : ''}); ` +
    'call `await init()` to open a new device, then recreate tensors and models (reload weights): tensors do not survive the loss'
  );
}

interface UniformArena {
  buffer: GPUBuffer;
  data: ArrayBuffer;
  used: number;
}

export class Runtime {
  readonly device: GPUDevice;
  readonly adapterInfo: DeviceInfo['adapterInfo'];
  readonly adapterKind: 'cpu' | 'gpu';
  readonly limits: GPUSupportedLimits;
  readonly features: Set<string>;
  readonly adapterFeatures: Set<string>;
  readonly kernels: KernelRegistry;
  readonly pool: BufferPool;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arenas: UniformArena[] = [];
  private freeArenas: UniformArena[] = [];
  private afterSubmitTasks: (() => void)[] = [];
  private errors: string[] = [];
  /** The context (op and shapes) of the last dispatch, named in error messages. */
  lastContext = '';
  private uniformAlign: number;
  dispatches = 0;
  submits = 0;
  /** Set once the device is lost (see init(), which then opens a new one). */
  lost: DeviceLoss | null = null;
  /**
   * Set by kernel-profile.ts while it profiles: each dispatch then runs in a compute pass of its
   * own, whose timestamp writes this returns for the kernel ('file.wgsl:entry').
   */
  passTimestamps: ((kernel: string) => GPUComputePassTimestampWrites) | null = null;
  /** Resolves when the device is lost, with why. */
  readonly whenLost: Promise<DeviceLoss>;

  constructor(info: DeviceInfo) {
    this.device = info.device;
    this.adapterInfo = info.adapterInfo;
    this.adapterKind = info.kind;
    this.limits = info.limits;
    this.features = info.features;
    this.adapterFeatures = info.adapterFeatures;
    this.uniformAlign = Math.max(16, this.limits.minUniformBufferOffsetAlignment);
    this.pool = new BufferPool(this.device);
    this.kernels = new KernelRegistry(this.device, (ctx, err) => this.errors.push(`${ctx}: ${err.message}`));
    this.device.addEventListener('uncapturederror', (ev) => {
      this.errors.push(`WebGPU error near ${this.lastContext || 'an unnamed op'}: ${(ev as GPUUncapturedErrorEvent).error.message}`);
    });
    this.whenLost = this.device.lost.then((info) => {
      const loss = { reason: String(info.reason ?? 'unknown'), message: info.message ?? '' };
      this.lost = loss;
      this.pool.lost = loss.reason;
      this.errors.push(lostDeviceMessage(loss));
      console.warn(`medseg: ${lostDeviceMessage(loss)}`);
      return loss;
    });
  }

  /** True for software adapters (SwiftShader, llvmpipe, ...; device.ts's adapterKindOf): kernels that avoid barriers win there. */
  get isCpuAdapter(): boolean {
    return this.adapterKind === 'cpu';
  }

  get adapterName(): string {
    const i = this.adapterInfo;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ').trim() + ` [${i.backend}]`;
  }

  private getEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder({ label: 'medseg batch' }));
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private uniformSlot(size: number): { buffer: GPUBuffer; offset: number; view: DataView } {
    let a = this.arenas[this.arenas.length - 1];
    if (!a || a.used + size > ARENA_SIZE) {
      a = this.freeArenas.pop() ?? {
        buffer: this.device.createBuffer({ size: ARENA_SIZE, usage: Usage.UNIFORM | Usage.COPY_DST, label: 'medseg uniforms' }),
        data: new ArrayBuffer(ARENA_SIZE),
        used: 0,
      };
      a.used = 0;
      new Uint8Array(a.data).fill(0);
      this.arenas.push(a);
    }
    const offset = a.used;
    a.used = Math.ceil((offset + size) / this.uniformAlign) * this.uniformAlign;
    return { buffer: a.buffer, offset, view: new DataView(a.data, offset, size) };
  }

  /** Splits a 1D workgroup count over x and y so neither passes maxComputeWorkgroupsPerDimension. */
  grid(groups: number): [number, number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [Math.max(1, groups), 1, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y, 1];
  }

  private placeholders = new Map<number, GPUBuffer>();

  /** A small buffer bound where a call uses no buffer: -1 the shared read-only one, k >= 0 the k-th writable one. */
  private placeholder(k: number): GPUBuffer {
    let b = this.placeholders.get(k);
    if (!b) {
      b = this.device.createBuffer({ size: 256, usage: Usage.STORAGE, label: k < 0 ? 'unused binding' : `unused writable binding ${k}` });
      this.placeholders.set(k, b);
    }
    return b;
  }

  pipeline(kernel: string, entry: string, overrides?: Overrides, context?: string): Pipeline {
    return this.kernels.pipeline(kernel, entry, overrides, context);
  }

  /** Encodes one compute dispatch into the current batch. */
  dispatch(spec: DispatchSpec): void {
    const ctx = spec.context ?? `${spec.kernel}:${spec.entry}`;
    this.lastContext = ctx;
    const p = this.kernels.pipeline(spec.kernel, spec.entry, spec.overrides, ctx);
    const entries: GPUBindGroupEntry[] = [];
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    let writablePlaceholders = 0;
    for (const [name, b] of p.bindings) {
      if (b.kind === 'uniform') continue;
      const given = spec.buffers[name];
      if (given === undefined) throw new Error(`medseg: ${ctx}: kernel ${p.file}.wgsl:${p.entry} needs buffer '${name}' (pass null if this call does not use it)`);
      // writable bindings may not alias: each unused one gets its own placeholder
      const buf = given ?? this.placeholder(b.kind === 'storage' ? writablePlaceholders++ : -1);
      if (buf.size > maxBinding) {
        throw new Error(
          `medseg: ${ctx}: buffer '${name}' is ${fmtBytes(buf.size)}, over this adapter's maxStorageBufferBindingSize (${fmtBytes(maxBinding)})`,
        );
      }
      entries.push({ binding: b.binding, resource: { buffer: buf } });
    }
    for (const name of Object.keys(spec.buffers)) {
      if (!p.bindings.has(name)) throw new Error(`medseg: ${ctx}: kernel ${p.file}.wgsl:${p.entry} has no binding '${name}'`);
    }
    if (p.params) {
      const slot = this.uniformSlot(p.params.size);
      packParams(p, spec.params ?? {}, slot.view, 0);
      entries.push({ binding: p.params.binding, resource: { buffer: slot.buffer, offset: slot.offset, size: p.params.size } });
    }
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries, label: ctx });
    const wg = typeof spec.workgroups === 'number' ? this.grid(spec.workgroups) : spec.workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (wg.some((n) => n > max)) throw new Error(`medseg: ${ctx}: ${wg.join('x')} workgroups exceed the per-dimension limit ${max}`);
    if (wg.some((n) => n === 0)) return;
    if (this.passTimestamps) {
      this.endPass();
      this.pass = this.getEncoder().beginComputePass({ label: ctx, timestampWrites: this.passTimestamps(`${spec.kernel}.wgsl:${spec.entry}`) });
    }
    this.pass ??= this.getEncoder().beginComputePass({ label: 'medseg compute' });
    this.pass.setPipeline(p.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(wg[0], wg[1], wg[2]);
    this.dispatches++;
    if (this.passTimestamps) this.endPass();
  }

  /** Uploads data into `dst` at byteOffset, ordered after every command already in the batch. */
  upload(dst: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (bytes === 0) return;
    let staging: GPUBuffer;
    try {
      staging = this.device.createBuffer({ size: bytes, usage: Usage.COPY_SRC, mappedAtCreation: true, label: 'medseg upload' });
    } catch (e) {
      // mapping at creation fails synchronously (RangeError) when the memory is not there
      throw new Error(`medseg: out of memory: could not stage an upload of ${fmtBytes(bytes)} (${bytes} bytes) on ${this.adapterName}: ${(e as Error).message}`);
    }
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.endPass();
    this.getEncoder().copyBufferToBuffer(staging, 0, dst, byteOffset, bytes);
    this.afterSubmitTasks.push(() => staging.destroy());
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits the batch. */
  flush(): void {
    this.endPass();
    if (this.encoder || this.arenas.length) {
      for (const a of this.arenas) this.device.queue.writeBuffer(a.buffer, 0, a.data, 0, a.used);
      if (this.encoder) this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.freeArenas.push(...this.arenas);
      this.arenas = [];
      this.submits++;
    }
    for (const t of this.afterSubmitTasks) t();
    this.afterSubmitTasks = [];
    this.pool.afterSubmit();
  }

  /**
   * Waits for the out-of-memory checks of the pool's allocations; throws an OutOfMemoryError naming
   * the first refused allocation (op and bytes), with the GPU errors that followed from it.
   */
  async checkAllocations(): Promise<void> {
    const failed = await this.pool.settle();
    if (!failed.length) return;
    this.flush(); // destroys the idle buffers the pool let go of
    // an empty submission moves the device past their last use, so it frees their memory now
    this.device.queue.submit([this.device.createCommandEncoder({ label: 'medseg release' }).finish()]);
    await this.device.queue.onSubmittedWorkDone();
    const followers = this.errors;
    this.errors = [];
    throw new OutOfMemoryError(failed, this.adapterName, followers);
  }

  /**
   * Runs an async unit of work (a prediction, a training step) and, if the device ran out of memory
   * in it, runs it once more: the pool has released its idle buffers by then. A second failure is thrown.
   * (WebGPU reports a refused allocation only at the next sync point, after the ops that used it were
   * encoded, so the retry is of the whole unit, not of the allocation.)
   */
  async retryOnOutOfMemory<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (!(e instanceof OutOfMemoryError)) throw e;
      console.warn(`medseg: ${e.message.split('\n')[0]}; retrying once`);
      return await work();
    }
  }

  /** Throws the errors collected since the last check, if any. */
  throwPendingErrors(): void {
    if (this.lost) {
      this.errors = [];
      throw new Error(`medseg: ${lostDeviceMessage(this.lost)}`);
    }
    if (this.errors.length) {
      const errs = this.errors;
      this.errors = [];
      throw new Error(`medseg: ${errs.length} GPU error(s):\n  ${errs.join('\n  ')}`);
    }
  }

  /** Waits until every submitted command has run, then reports any GPU errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await Promise.resolve();
    await this.checkAllocations();
    this.throwPendingErrors();
  }

  /** Reads `bytes` from a storage buffer (a sync point). */
  async readBuffer(src: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, size), usage: Usage.MAP_READ | Usage.COPY_DST, label: 'medseg readback' });
    if (size > 0) this.copy(src, byteOffset, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */);
    } catch (e) {
      // a map fails when the device goes (a browser reports the loss a moment later) or on an error
      await Promise.race([this.whenLost, new Promise((r) => setTimeout(r, 200))]);
      staging.destroy();
      await this.checkAllocations();
      this.throwPendingErrors();
      throw e;
    }
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    await this.checkAllocations(); // the data read is meaningless if an allocation before it failed
    this.throwPendingErrors();
    return out;
  }
}

let current: Runtime | null = null;
let opening: Promise<Runtime> | null = null;

export interface InitOptions {
  /** Node only: which adapter (overrides MEDSEG_ADAPTER). */
  adapter?: AdapterChoice;
}

/** Opens the device once; later calls return the same runtime, or open a new device if it was lost. */
export function init(options: InitOptions = {}): Promise<Runtime> {
  if (current?.lost) {
    current = null;
    opening = null;
  }
  if (current) return Promise.resolve(current);
  opening ??= openDevice(options.adapter).then(
    (info) => (current = new Runtime(info)),
    (e) => {
      opening = null;
      throw e;
    },
  );
  return opening;
}

export function runtime(): Runtime {
  if (!current) throw new Error('medseg: call `await init()` before creating tensors');
  if (current.lost) throw new Error(`medseg: ${lostDeviceMessage(current.lost)}`);
  return current;
}
