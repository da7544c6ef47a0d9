// The kernel profiler (src/gpu/kernel-profile.ts) against facts known from the ops: a naive matmul
// whose K spans three slices of src/ops/matmul.ts (8192 each) dispatches matmul.wgsl:matmul_naive
// three times, and a relu after it one elementwise kernel; every time is >= 0, their sum is at most
// the wall time around the call, the result is fn's and still correct, and later dispatches are
// unprofiled. On a device without timestamp queries (llvmpipe) the answer is source 'none' with an
// empty list. Also: profiles do not nest.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { F, runtime, tensor } from '../../src/index.js';
import { profileKernels, timestampSupport } from '../../src/gpu/kernel-profile.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { ready } from '../helpers.js';

beforeAll(ready);
afterEach(() => setKernelVariant('matmul', null));

const M = 3;
const N = 5;
const K = 2 * 8192 + 7;

function inputs() {
  const a = new Float32Array(M * K).map((_, i) => ((i * 37) % 11) / 11 - 0.5);
  const b = new Float32Array(K * N).map((_, i) => ((i * 53) % 13) / 13 - 0.5);
  const want = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
    want[i * N + j] = Math.max(0, s);
  }
  return { a: tensor(a, [M, K]), b: tensor(b, [K, N]), want };
}

describe('profileKernels', () => {
  it('names and counts the kernels of a known graph, with times >= 0 summing to at most the wall time', async () => {
    const { a, b, want } = inputs();
    setKernelVariant('matmul', 'naive');
    const t0 = performance.now();
    const p = await profileKernels(async () => {
      const y = F.relu(F.matmul(a, b));
      const v = await y.read();
      y.dispose();
      return v;
    });
    const wall = performance.now() - t0;
    for (let i = 0; i < want.length; i++) expect(Math.abs(p.result[i] - want[i]), `y[${i}]`).toBeLessThan(1e-3 * Math.max(1, Math.abs(want[i])));
    const support = timestampSupport();
    if (!support.available) {
      expect(p.source, support.why).toBe('none');
      expect(p.kernels).toEqual([]);
      return;
    }
    expect(p.source).toBe('timestamp');
    const byName = Object.fromEntries(p.kernels.map((k) => [k.kernel, k]));
    expect(byName['matmul.wgsl:matmul_naive']?.calls, JSON.stringify(p.kernels)).toBe(3);
    const others = p.kernels.filter((k) => k.kernel !== 'matmul.wgsl:matmul_naive');
    expect(others.map((k) => [k.kernel.split(':')[0], k.calls]), JSON.stringify(p.kernels)).toEqual([['elementwise.wgsl', 1]]);
    let sum = 0;
    for (const k of p.kernels) {
      expect(k.ms, k.kernel).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(k.ms), k.kernel).toBe(true);
      sum += k.ms;
    }
    expect(sum).toBeLessThanOrEqual(wall);
    // the hook is gone: a later dispatch is not profiled (and a second profile starts empty)
    expect(runtime().passTimestamps).toBeNull();
    const again = await profileKernels(async () => 1);
    expect(again).toEqual({ result: 1, kernels: [], source: 'timestamp' });
    a.dispose();
    b.dispose();
  });

  it('refuses to nest, and clears its hook when fn throws', async () => {
    if (!timestampSupport().available) {
      // without timestamps fn simply runs, and its error passes through
      await expect(profileKernels(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      return;
    }
    await expect(profileKernels(() => profileKernels(async () => 0))).rejects.toThrow(/do not nest/);
    await expect(profileKernels(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(runtime().passTimestamps).toBeNull();
  });
});
