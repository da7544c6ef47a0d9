// Garbage collection between forward and backward of the fused attention (node only: needs V8's gc()).
// The dense copy of a strided decomposed bias is read by the backward kernels, so the recorded node
// must keep it reachable: a collection must not hand its buffer back to the pool before backward.
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, memoryStats, randn, runtime } from '../../src/index.js';
import { setKernelVariant } from '../../src/gpu/variants.js';
import { ready } from '../helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Collects garbage and lets the finalization callbacks run. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(ready);
afterAll(() => setKernelVariant('attention', null));

describe('scaledDotProductAttention (fused) and garbage collection', () => {
  it("a collection between forward and backward frees nothing the node saved (rel's dense copy)", async () => {
    setKernelVariant('attention', 'fused');
    const [kh, kw] = [3, 2];
    const leaves = [randn([2, 5, 8]), randn([2, 6, 8]), randn([2, 6, 8]), randn([2, 5, kh + kw + 2])];
    for (const t of leaves) t.requiresGrad = true;
    const [q, k, v, relBig] = leaves;
    const rel = relBig.narrow(-1, 1, kh + kw);
    await collect();
    const o = F.scaledDotProductAttention(q, k, v, { decomposedBias: { rel, kh, kw } });
    await o.read();
    await runtime().sync();
    const before = memoryStats();
    await collect();
    const after = memoryStats();
    expect(after.liveTensors, 'live tensor handles after a collection').toBe(before.liveTensors);
    expect(after.liveBytes, 'live bytes after a collection').toBe(before.liveBytes);
    const loss = o.sum();
    loss.backward();
    for (const t of leaves) await t.grad!.read();
    for (const t of [rel, o, loss, ...leaves]) {
      t.grad?.dispose();
      t.dispose();
    }
  });
});
