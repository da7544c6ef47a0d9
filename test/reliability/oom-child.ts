// Run by gpu-oom.node.test.ts in a child process (bundled with esbuild): opens the runtime, caps its
// own address space with prlimit a few hundred MiB above what it uses after start-up, so that a real
// allocation fails in the driver (SwiftShader and llvmpipe take GPU memory from the process), and
// reports each step as one JSON line on stdout.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { init, tensor, Tensor, memoryStats } from '../../src/index.js';
import { OutOfMemoryError } from '../../src/gpu/runtime.js';

const MiB = 2 ** 20;
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
const vmSize = () => Number(/VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

const rt = await init();
// warm up: a kernel compiled and run, a read, so later threads and pipelines are in place
const warm = tensor([1, 2, 3]).add(1);
await warm.read();
warm.dispose();
// the soft limit only (the hard one stays as it is), so step 3 can set it again from where it is then
const capAddressSpace = (headroom: number) => {
  const cap = vmSize() + headroom;
  execFileSync('prlimit', [`--pid=${process.pid}`, `--as=${cap}:`]);
  return Math.round(cap / MiB);
};
say({ step: 'capped', adapter: rt.adapterName, capMiB: capAddressSpace(600 * MiB), maxBufferSize: rt.limits.maxBufferSize });

const errorOf = async (work: () => Promise<unknown>) => {
  try {
    await work();
    return null;
  } catch (e) {
    const err = e as Error;
    return { name: err.name, message: err.message, isOom: e instanceof OutOfMemoryError, op: (e as OutOfMemoryError).op, bytes: (e as OutOfMemoryError).bytes };
  }
};

// 1. far more than the cap leaves (but within maxBufferSize): refused, named, reported at sync
const big = Math.min(rt.limits.maxBufferSize, 1024 * MiB);
// the same small op alone first, so the peak before already holds what step 1 really allocates
const smallOp = () => {
  const a = tensor([5, 6]);
  const b = a.mul(2);
  a.dispose();
  return b;
};
const pre = smallOp();
await pre.read();
pre.dispose();
const { peakBytes: peakBefore, liveBytes: liveBefore } = memoryStats();
const e1 = await errorOf(async () => {
  const t = Tensor.empty([big / 4], 'reliability big');
  const small = smallOp(); // an op after it in the same batch
  try {
    await rt.sync();
  } finally {
    t.dispose();
    small.dispose();
  }
});
const s1 = memoryStats();
say({ step: 'oversized', error: e1, asked: big, peakBefore, peakAfter: s1.peakBytes, liveBefore, liveAfter: s1.liveBytes });

// 2. the next call works and computes the right thing
const x = tensor([1, 2, 3, 4]);
const y = x.mul(3).add(1);
say({ step: 'after', values: [...(await y.read())], live: memoryStats().liveBytes });
x.dispose();
y.dispose();

// 3. idle pooled buffers make an allocation fail that fits without them: the retry after the pool's
// release succeeds. 3 x 64 MiB idle (the pool keeps at most 256 MiB idle), then 512 MiB with the
// cap set 416 MiB above the address space in use then (idle buffers included): refused by 96 MiB
// with them, fits by 96 MiB without. The cap is set here, not from step 1's, so that what the
// process grew by meanwhile (threads, the JS heap; more on a loaded machine) is not in the margin.
const idle = [0, 1, 2].map(() => Tensor.empty([16 * MiB], 'reliability idle'));
await rt.sync();
for (const t of idle) t.dispose();
const idleBefore = memoryStats().idleBytes;
say({ step: 'recapped', capMiB: capAddressSpace(416 * MiB) });
let attempts = 0;
const e3 = await errorOf(() =>
  rt.retryOnOutOfMemory(async () => {
    attempts++;
    say({ step: 'attempt', vmMiB: Math.round(vmSize() / MiB), stats: memoryStats() });
    const t = Tensor.empty([128 * MiB], 'reliability retried');
    try {
      await rt.sync();
    } finally {
      t.dispose();
    }
  }),
);
say({ step: 'retry', error: e3, attempts, idleBefore, idleAfter: memoryStats().idleBytes });
