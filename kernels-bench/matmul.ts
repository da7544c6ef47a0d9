// matmul benchmark: every variant the kernel registry lists for the 'matmul' family (naive, blocked,
// tiled) at the shapes that matter: square 256 and 1024, and MedSAM's 4096-token projections
// (4096x768x768 qkv/proj, 4096x3072x768 MLP).
import { F, randn, type Tensor } from 'medseg';
import { kernelFamily, setKernelVariant } from 'medseg/gpu';
import type { BenchCase } from './case.js';

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [1024, 1024, 1024],
  [4096, 768, 768],
  [4096, 3072, 768],
];

function matmulCase(M: number, N: number, K: number, variant: string): BenchCase {
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
        setKernelVariant('matmul', variant);
        try {
          out = F.matmul(a, b);
        } finally {
          setKernelVariant('matmul', null);
        }
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

export const cases: BenchCase[] = SHAPES.flatMap(([M, N, K]) => kernelFamily('matmul').variants.map((v) => matmulCase(M, N, K, v.name)));
