// resetPeakMemory (src/tensor.ts, beside memoryStats): the peak restarts from the bytes live now,
// so a benchmark or test can measure the peak of one step; it rises again with the next allocation.
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryStats, resetPeakMemory, zeros } from '../../src/index.js';
import { ready } from '../helpers.js';

beforeAll(ready);

describe('resetPeakMemory', () => {
  it('restarts the peak from the live bytes, and the next allocation raises it', async () => {
    const big = zeros([1 << 18]); // 1 MiB
    await big.read();
    big.dispose();
    const before = memoryStats();
    expect(before.peakBytes).toBeGreaterThanOrEqual(before.liveBytes + (1 << 20));
    resetPeakMemory();
    expect(memoryStats().peakBytes).toBe(memoryStats().liveBytes);
    const small = zeros([1 << 14]); // 64 KiB
    await small.read();
    const after = memoryStats();
    expect(after.peakBytes).toBe(after.liveBytes);
    expect(after.peakBytes).toBeGreaterThanOrEqual(before.liveBytes + (1 << 16));
    expect(after.peakBytes).toBeLessThan(before.liveBytes + (1 << 20));
    small.dispose();
  });
});
