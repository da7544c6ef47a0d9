// matmul benchmark: the naive (one invocation per output), blocked (4x4 outputs per invocation,
// no workgroup memory) and tiled (64x64 workgroup tiles, 4x4 outputs per invocation) kernels at the shapes that matter: square 256 and 1024, and
// MedSAM's 4096-token projections (4096x768x768 qkv/proj, 4096x3072x768 MLP).
import { randn, type Tensor } from 'medseg';
import { matmulKernel, type MatmulVariant } from 'medseg/gpu';
import type { BenchCase } from './case.js';

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [1024, 1024, 1024],
  [4096, 768, 768],
  [4096, 3072, 768],
];

function matmulCase(M: number, N: number, K: number, variant: MatmulVariant): BenchCase {
  let a: Tensor, b: Tensor, out: Tensor | null = null;
  return {
    name: `matmul ${M}x${N}x${K}`,
    variant,
    flops: 2 * M * N * K,
    bytes: 4 * (M * K + K * N + M * N),
    setup() {
      a = randn([M, K], { seed: 1 });
      b = randn([K, N], { seed: 2 });
      return () => {
        out?.dispose();
        out = matmulKernel(a, b, null, variant);
      };
    },
    teardown() {
      a.dispose();
      b.dispose();
      out?.dispose();
      out = null;
    },
  };
}

export const cases: BenchCase[] = SHAPES.flatMap(([M, N, K]) => (['naive', 'blocked', 'tiled'] as MatmulVariant[]).map((v) => matmulCase(M, N, K, v)));
