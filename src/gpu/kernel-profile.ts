// The kernel profiler: GPU time per kernel from timestamp queries. profileKernels(fn) runs fn with
// the runtime's pass hook set (runtime.ts's passTimestamps), so every dispatch fn encodes runs in a
// compute pass of its own whose start and end the GPU stamps; afterwards the stamps are resolved,
// read back, and summed per kernel ('file.wgsl:entry', the name the runtime's errors give). Where
// the device has no 'timestamp-query' feature (Dawn's OpenGL backend on llvmpipe, browsers that
// hide it) fn still runs, and the answer says source 'none' with an empty list: no time is guessed.
// Dispatches that anything else encodes while fn runs are profiled too (one runtime, one queue).
import { Usage } from './buffer-pool.js';
import { runtime, type Runtime } from './runtime.js';

export interface KernelTime {
  /** 'file.wgsl:entry' */
  kernel: string;
  /** dispatches of it */
  calls: number;
  /** GPU milliseconds summed over the calls (from the pass timestamps) */
  ms: number;
}

export interface KernelProfile<T> {
  result: T;
  /** per kernel, most time first; empty where source is 'none' */
  kernels: KernelTime[];
  /** 'timestamp': GPU timestamps; 'none': this device has no timestamp queries */
  source: 'timestamp' | 'none';
}

/** Whether the open device can time passes ('timestamp-query' granted), and if not, why. */
export function timestampSupport(rt: Runtime = runtime()): { available: boolean; why: string } {
  if (rt.features.has('timestamp-query')) return { available: true, why: 'timestamp-query' };
  return {
    available: false,
    why: rt.adapterFeatures.has('timestamp-query')
      ? 'the adapter offers timestamp-query but the device was opened without it'
      : `the adapter (${rt.adapterName}) has no timestamp-query feature`,
  };
}

/** Queries per query set (the WebGPU limit is 4096). */
const SET_SIZE = 4096;

let active = false;

/**
 * Runs fn and returns its result with the GPU time of each kernel it dispatched. fn should finish
 * its GPU work (read or sync) or leave it encoded: the profiler submits what is left and waits.
 * Profiles do not nest.
 */
export async function profileKernels<T>(fn: () => Promise<T>): Promise<KernelProfile<T>> {
  const rt = runtime();
  if (!timestampSupport(rt).available) return { result: await fn(), kernels: [], source: 'none' };
  if (active) throw new Error('profileKernels: a profile is already running (profiles do not nest)');
  const device = rt.device;
  const sets: GPUQuerySet[] = [];
  const names: string[] = [];
  let used = SET_SIZE;
  rt.flush(); // work encoded before the profile stays out of it
  active = true;
  rt.passTimestamps = (kernel) => {
    if (used + 2 > SET_SIZE) {
      sets.push(device.createQuerySet({ type: 'timestamp', count: SET_SIZE, label: 'medseg kernel profile' }));
      used = 0;
    }
    names.push(kernel);
    const w = { querySet: sets[sets.length - 1], beginningOfPassWriteIndex: used, endOfPassWriteIndex: used + 1 };
    used += 2;
    return w;
  };
  let result: T;
  try {
    result = await fn();
    rt.flush();
  } finally {
    rt.passTimestamps = null;
    active = false;
  }
  try {
    const stamps = await readStamps(rt, sets, names.length);
    const byKernel = new Map<string, KernelTime>();
    names.forEach((kernel, i) => {
      const k = byKernel.get(kernel) ?? { kernel, calls: 0, ms: 0 };
      // an end stamp before its start (a clock that is not monotonic across passes) counts as 0, not negative
      k.ms += Math.max(0, Number(stamps[2 * i + 1] - stamps[2 * i])) / 1e6;
      k.calls++;
      byKernel.set(kernel, k);
    });
    return { result, kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms), source: 'timestamp' };
  } finally {
    for (const s of sets) s.destroy();
  }
}

/** The first 2 * passes stamps of the sets (nanoseconds), resolved and read back. */
async function readStamps(rt: Runtime, sets: readonly GPUQuerySet[], passes: number): Promise<BigUint64Array> {
  const count = 2 * passes;
  if (count === 0) return new BigUint64Array(0);
  const device = rt.device;
  const bytes = count * 8;
  // resolveQuerySet writes at 256-byte aligned offsets: each set resolves into its own aligned region
  const region = SET_SIZE * 8;
  const resolve = device.createBuffer({ size: sets.length * region, usage: Usage.QUERY_RESOLVE | Usage.COPY_SRC, label: 'medseg profile resolve' });
  const read = device.createBuffer({ size: sets.length * region, usage: Usage.MAP_READ | Usage.COPY_DST, label: 'medseg profile readback' });
  try {
    const enc = device.createCommandEncoder({ label: 'medseg profile resolve' });
    sets.forEach((s, i) => enc.resolveQuerySet(s, 0, Math.min(SET_SIZE, count - i * SET_SIZE), resolve, i * region));
    enc.copyBufferToBuffer(resolve, 0, read, 0, sets.length * region);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(1 /* GPUMapMode.READ */);
    const all = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    rt.throwPendingErrors();
    return all.subarray(0, bytes / 8);
  } finally {
    resolve.destroy();
    read.destroy();
  }
}
