// matmul benchmark: every variant the kernel registry has for the shape (naive, blocked, and the
// tiled kernel at each tile size: tiled, tiled-m16, tiled-k32) at the shapes that matter:
// square 256 and 1024, and MedSAM's 4096-token projections (4096x768x768 qkv/proj, 4096x3072x768
// MLP); --quick runs 128^3 without the extra tile sizes (each is a pipeline that takes seconds to
// compile on a CPU adapter; tune.test.ts checks them). Checked: sampled outputs against float64 dot
// products of the rows and columns read back.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { relErr, sampleIndices } from './check.js';

const TILE_SIZES = ['tiled-m16', 'tiled-k32'];

function matmulCase(M: number, N: number, K: number, quick = false): BenchCase {
  return {
    name: `matmul ${M}x${N}x${K}`,
    registry: 'matmul',
    exclude: quick ? Object.fromEntries(TILE_SIZES.map((v) => [v, 'quick run (tile sizes are timed in full runs)'])) : undefined,
    flops: 2 * M * N * K,
    bytes: 4 * (M * K + K * N + M * N),
    setup() {
      const a = randn([M, K], { seed: 1 });
      const b = randn([K, N], { seed: 2 });
      let out: Tensor | null = null;
      return {
        run() {
          out?.dispose();
          out = F.matmul(a, b);
        },
        async check() {
          const [A, B, C] = await Promise.all([a.read(), b.read(), out!.read()]);
          const idx = sampleIndices(M * N);
          const want = idx.map((f) => {
            const i = Math.floor(f / N);
            const j = f % N;
            let s = 0;
            for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
            return s;
          });
          return relErr(idx.map((f) => C[f]), want);
        },
        teardown() {
          a.dispose();
          b.dispose();
          out?.dispose();
        },
      };
    },
  };
}

const SHAPES: [number, number, number][] = [
  [256, 256, 256],
  [1024, 1024, 1024],
  [4096, 768, 768],
  [4096, 3072, 768],
];

export const family: BenchFamily = {
  cases: SHAPES.map(([M, N, K]) => matmulCase(M, N, K)),
  quick: [matmulCase(128, 128, 128, true)],
};
