// Measures the adapter's peaks with the microkernels of shaders/peak.wgsl: FMA throughput
// (GFLOP/s) and copy bandwidth (GB/s, bytes read + written). The suite reports every kernel as a
// share of these.
import { Tensor } from 'medseg';
import { runtime } from 'medseg/gpu';

export interface Peaks {
  gflops: number;
  gbps: number;
}

async function timeIt(run: () => void, minSeconds: number): Promise<number> {
  const rt = runtime();
  run();
  await rt.sync(); // warm-up and compile
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) run();
    await rt.sync();
    const s = (performance.now() - t0) / 1000;
    if (s >= minSeconds || reps >= 256) return s / reps;
    reps = Math.min(256, Math.ceil(reps * Math.max(2, (minSeconds / Math.max(s, 1e-4)) * 1.2)));
  }
}

export async function measurePeaks(cpu: boolean): Promise<Peaks> {
  const rt = runtime();
  const invocations = cpu ? 256 * 64 : 256 * 4096;
  const iters = cpu ? 512 : 4096;
  const out = Tensor.empty([invocations * 4]);
  const fma = () =>
    rt.dispatch({
      kernel: 'peak',
      entry: 'fma_peak',
      params: { iters, n: invocations, seed: 0.5 },
      buffers: { out: out.buffer },
      workgroups: invocations / 256,
      context: 'fma_peak',
    });
  const fmaSeconds = await timeIt(fma, cpu ? 0.5 : 0.2);
  const gflops = (invocations * iters * 64) / fmaSeconds / 1e9;
  out.dispose();

  const n = (cpu ? 4 : 64) * 2 ** 20; // floats
  const src = Tensor.empty([n]);
  const dst = Tensor.empty([n]);
  const copy = () =>
    rt.dispatch({
      kernel: 'peak',
      entry: 'copy_bandwidth',
      params: { iters: 0, n: n / 4, seed: 0 },
      buffers: { src: src.buffer, out: dst.buffer },
      workgroups: n / 4 / 256,
      context: 'copy_bandwidth',
    });
  const copySeconds = await timeIt(copy, cpu ? 0.5 : 0.2);
  src.dispose();
  dst.dispose();
  return { gflops, gbps: (2 * n * 4) / copySeconds / 1e9 };
}

export { timeIt };
