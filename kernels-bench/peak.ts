// Measures the adapter's peaks with the microkernels of shaders/peak.wgsl: FMA throughput
// (GFLOP/s) and copy bandwidth (GB/s, bytes read + written), each as the median of timing.ts's
// batches. The suite runs this a few times and reports every kernel as a share of the median, with
// the range over the runs shown (a peak that moves 3x between runs is visible as such).
import { Tensor } from 'medseg';
import { runtime } from 'medseg/gpu';
import { timeRuns } from './timing.js';

export interface Peaks {
  gflops: number;
  gbps: number;
}

export async function measurePeaks(cpu: boolean, budget = cpu ? 0.5 : 0.2): Promise<Peaks> {
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
  fma();
  await rt.sync(); // compile
  const fmaSeconds = (await timeRuns(fma, budget)).median;
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
  copy();
  await rt.sync();
  const copySeconds = (await timeRuns(copy, budget)).median;
  src.dispose();
  dst.dispose();
  return { gflops, gbps: (2 * n * 4) / copySeconds / 1e9 };
}
