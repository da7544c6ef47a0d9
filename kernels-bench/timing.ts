// The timing method: after the cold run (pipeline creation included, timed apart by the runner),
// runs are batched (one submit, then a sync) so that a batch takes about a fifth of the budget, and
// batches repeat until the budget is spent and at least three (minBatches) were timed; the result is
// the median per run and the range over the batches. A single run longer than the budget is timed
// once (no spread). Each batch runs inside the kernel profiler (src/gpu/kernel-profile.ts): where
// the device has timestamp queries the time is the GPU time of its kernels (the sum over its
// dispatches), otherwise wall time around a queue sync; `source` says which, and the wall time is
// kept beside it. useTimestamps(false) (the suite's --wall) times wall clock everywhere.
import { profileKernels, runtime, timestampSupport } from 'medseg/gpu';

export interface Timing {
  /** seconds per run: median over the batches (GPU time where source is 'timestamp', else wall) */
  median: number;
  min: number;
  max: number;
  /** runs timed in all */
  runs: number;
  /** wall seconds per run around a sync, median over the same batches */
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
  const batch = async (reps: number): Promise<{ wall: number; gpu: number }> => {
    const t0 = now();
    if (source === 'wall') {
      for (let i = 0; i < reps; i++) run();
      await rt.sync();
      const w = (now() - t0) / reps;
      return { wall: w, gpu: w };
    }
    const p = await profileKernels(async () => {
      for (let i = 0; i < reps; i++) run();
      await rt.sync();
    });
    const wall = (now() - t0) / reps;
    return { wall, gpu: p.kernels.reduce((s, k) => s + k.ms, 0) / 1000 / reps };
  };
  const first = await batch(1);
  if (first.wall >= budget) return { median: first.gpu, min: first.gpu, max: first.gpu, runs: 1, wall: first.wall, source };
  const reps = Math.max(1, Math.min(256, Math.round(budget / 5 / Math.max(first.wall, 1e-6))));
  const per: { wall: number; gpu: number }[] = [];
  const start = now();
  while (per.length < minBatches || (now() - start < budget && per.length < 50)) per.push(await batch(reps));
  const g = per.map((p) => p.gpu);
  return { median: median(g), min: Math.min(...g), max: Math.max(...g), runs: reps * per.length, wall: median(per.map((p) => p.wall)), source };
}

/** The first run (pipeline creation included) in seconds, wall clock. */
export async function coldRun(run: () => void): Promise<number> {
  const t0 = now();
  run();
  await runtime().sync();
  return now() - t0;
}
