// The timing method: after the cold run (pipeline creation included, timed apart by the runner),
// one warm-up run sizes the batches: runs are batched (one submit, then a sync) so that a batch
// takes about a fifth of the budget, and batches repeat until the budget is spent and at least
// three (minBatches) were timed; the result is the median per run and the range over the batches.
// A single run longer than the budget is timed once (no spread). Where the device has timestamp
// queries, the time is the GPU time of the kernels (the sum over the dispatches) from batches run
// inside the kernel profiler (src/gpu/kernel-profile.ts: each dispatch in a timed pass of its own),
// and the wall time comes from as many batches run without it, alternating with them (for a run
// over the budget: the warm-up run), so that it is the real end-to-end time; otherwise every batch
// is wall time around a queue sync. `source` says which. useTimestamps(false) (the suite's --wall)
// times wall clock everywhere.
import { profileKernels, runtime, timestampSupport } from 'medseg/gpu';

export interface Timing {
  /** seconds per run: median over the batches (GPU time where source is 'timestamp', else wall) */
  median: number;
  min: number;
  max: number;
  /** runs behind median (with timestamp queries as many again ran unprofiled for `wall`) */
  runs: number;
  /** wall seconds per run around a sync, median over batches run without the profiler */
  wall: number;
  source: 'timestamp' | 'wall';
}

const now = () => performance.now() / 1000;
let timestamps = true;

/** false: wall time even where the device has timestamp queries. */
export function useTimestamps(on: boolean): void {
  timestamps = on;
}

/** What timeRuns measures on the open device, for the tables' method line. */
export function timeSource(): { source: 'timestamp' | 'wall'; why: string } {
  const s = timestampSupport();
  if (!timestamps) return { source: 'wall', why: 'timestamp queries turned off (--wall)' };
  return s.available ? { source: 'timestamp', why: 'GPU timestamp queries per dispatch' } : { source: 'wall', why: s.why };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

export async function timeRuns(run: () => void, budget: number, minBatches = 3): Promise<Timing> {
  const rt = runtime();
  const source = timeSource().source;
  // wall seconds per run: the runs in one submit, then a queue sync; no profiler
  const wallBatch = async (reps: number): Promise<number> => {
    const t0 = now();
    for (let i = 0; i < reps; i++) run();
    await rt.sync();
    return (now() - t0) / reps;
  };
  // GPU seconds per run: the kernels' time from timestamp queries (each dispatch in a timed pass of its own)
  const gpuBatch = async (reps: number): Promise<number> => {
    const p = await profileKernels(async () => {
      for (let i = 0; i < reps; i++) run();
      await rt.sync();
    });
    return p.kernels.reduce((s, k) => s + k.ms, 0) / 1000 / reps;
  };
  // the warm-up: one run without the profiler, which sizes the batches
  const first = await wallBatch(1);
  if (first >= budget) {
    const gpu = source === 'timestamp' ? await gpuBatch(1) : first;
    return { median: gpu, min: gpu, max: gpu, runs: 1, wall: first, source };
  }
  const reps = Math.max(1, Math.min(256, Math.round(budget / 5 / Math.max(first, 1e-6))));
  const walls: number[] = [];
  const gpus: number[] = [];
  const start = now();
  // with timestamps, profiled batches (GPU time) alternate with unprofiled ones (wall time), so
  // the wall time is the end-to-end time of the runs as an application sees them
  while (walls.length < minBatches || (now() - start < budget && walls.length < 50)) {
    walls.push(await wallBatch(reps));
    if (source === 'timestamp') gpus.push(await gpuBatch(reps));
  }
  const g = source === 'timestamp' ? gpus : walls;
  return { median: median(g), min: Math.min(...g), max: Math.max(...g), runs: reps * g.length, wall: median(walls), source };
}

/** The first run (pipeline creation included) in seconds, wall clock. */
export async function coldRun(run: () => void): Promise<number> {
  const t0 = now();
  run();
  await runtime().sync();
  return now() - t0;
}
