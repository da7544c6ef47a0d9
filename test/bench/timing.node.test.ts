// The benchmark's timing method (kernels-bench/timing.ts), through the built package as the suite
// runs it: where the device has timestamp queries (SwiftShader in the node project), the GPU time
// comes from batches inside the kernel profiler and the wall time from as many batches outside it
// (plus the warm-up run), so the wall time carries none of the profiler's per-dispatch passes; a
// run longer than the budget is run once outside (its wall time) and once inside; without
// timestamps (llvmpipe, or --wall) nothing runs inside the profiler. No time is asserted.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from 'medseg';
import { init, runtime } from 'medseg/gpu';
import { coldRun, timeRuns, timeSource, useTimestamps } from '../../kernels-bench/timing.js';

beforeAll(() => init());
afterEach(() => useTimestamps(true));

/**
 * A run that encodes one small op and counts whether the profiler's pass hook was set; its cold
 * run (pipeline creation, as the suite runs it before timeRuns) is done and not counted.
 */
async function countingRun(sleepMs = 0) {
  const x = tensor(new Float32Array(256).fill(1), [256]);
  const n = { profiled: 0, plain: 0 };
  const run = () => {
    if (runtime().passTimestamps) n.profiled++;
    else n.plain++;
    F.add(x, x).dispose();
    if (sleepMs) {
      const end = performance.now() + sleepMs;
      while (performance.now() < end);
    }
  };
  await coldRun(run);
  n.plain = 0;
  return { run, n, dispose: () => x.dispose() };
}

describe('timeRuns', () => {
  it('times wall clock outside the profiler and GPU time inside it, as many batches each', async () => {
    const { run, n, dispose } = await countingRun();
    const t = await timeRuns(run, 0.2, 3);
    if (timeSource().source === 'timestamp') {
      expect(t.source).toBe('timestamp');
      // the warm-up run, then one unprofiled batch per profiled one
      expect(n.profiled).toBe(t.runs);
      expect(n.plain).toBe(t.runs + 1);
    } else {
      expect(t.source).toBe('wall');
      expect(n.profiled).toBe(0);
      expect(n.plain).toBe(t.runs + 1);
    }
    expect(t.runs).toBeGreaterThanOrEqual(3);
    expect(t.wall).toBeGreaterThan(0);
    dispose();
  });

  it('a run longer than the budget: its warm-up run gives the wall time, one profiled run the GPU time', async () => {
    const { run, n, dispose } = await countingRun(30);
    const t = await timeRuns(run, 0.01, 3);
    expect(t.runs).toBe(1);
    expect(t.wall).toBeGreaterThanOrEqual(0.03);
    expect([n.plain, n.profiled]).toEqual(timeSource().source === 'timestamp' ? [1, 1] : [1, 0]);
    dispose();
  });

  it('--wall: nothing runs inside the profiler', async () => {
    useTimestamps(false);
    const { run, n, dispose } = await countingRun();
    const t = await timeRuns(run, 0.1, 3);
    expect(t.source).toBe('wall');
    expect(n.profiled).toBe(0);
    expect(n.plain).toBe(t.runs + 1);
    dispose();
  });
});
