// The timing method: after the cold run (pipeline creation included, timed apart by the runner),
// runs are batched (one submit, then a sync) so that a batch takes about a fifth of the budget, and
// batches repeat until the budget is spent and at least three (minBatches) were timed; the result is the median
// per run and the range over the batches. A single run longer than the budget is timed once (no
// spread). Wall time around a queue sync: the timestamp-query feature is not used, and the tables
// say so.
import { runtime } from 'medseg/gpu';

export interface Timing {
  /** seconds per run: median over the batches */
  median: number;
  min: number;
  max: number;
  /** runs timed in all */
  runs: number;
}

const now = () => performance.now() / 1000;

export async function timeRuns(run: () => void, budget: number, minBatches = 3): Promise<Timing> {
  const rt = runtime();
  const batch = async (reps: number) => {
    const t0 = now();
    for (let i = 0; i < reps; i++) run();
    await rt.sync();
    return (now() - t0) / reps;
  };
  const first = await batch(1);
  if (first >= budget) return { median: first, min: first, max: first, runs: 1 };
  const reps = Math.max(1, Math.min(256, Math.round(budget / 5 / Math.max(first, 1e-6))));
  const per: number[] = [];
  const start = now();
  while (per.length < minBatches || (now() - start < budget && per.length < 50)) per.push(await batch(reps));
  const sorted = [...per].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1], runs: reps * per.length };
}

/** The first run (pipeline creation included) in seconds. */
export async function coldRun(run: () => void): Promise<number> {
  const t0 = now();
  run();
  await runtime().sync();
  return now() - t0;
}
