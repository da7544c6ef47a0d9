// Elementwise benchmarks (memory-bound): a dense add, a per-channel broadcast (PReLU over a V-Net
// activation) and the copy of a transposed view, over V-Net's widest tensor at full size
// (16 x 64 x 128 x 128 = 16.8M values; --quick: PReLU at 8 x 16 x 32 x 32). Bytes count each operand read
// and the output written once. Checked: sampled outputs against the float64 formula.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { prod, relErr, sampleIndices, unravel } from './check.js';

type Ref = (x: Float32Array, y: Float32Array, w: Float32Array, f: number, shape: number[]) => number;

function ewCase(shape: number[], name: string, label: string, operands: number, op: (x: Tensor, y: Tensor, w: Tensor) => Tensor, ref: Ref): BenchCase {
  const N = prod(shape);
  return {
    name: `${name} ${shape.join('x')}`,
    label,
    flops: N,
    bytes: 4 * N * (operands + 1),
    setup() {
      const x = randn(shape, { seed: 1 });
      const y = randn(shape, { seed: 2 });
      const w = randn([shape[1], 1, 1, 1], { seed: 3 });
      let out: Tensor | null = null;
      return {
        run() {
          out?.dispose();
          out = op(x, y, w);
        },
        async check() {
          const [X, Y, W, O] = await Promise.all([x.read(), y.read(), w.read(), out!.read()]);
          const idx = sampleIndices(N);
          return relErr(idx.map((f) => O[f]), idx.map((f) => ref(X, Y, W, f, shape)));
        },
        teardown() {
          for (const t of [x, y, w, out]) t?.dispose();
        },
      };
    },
  };
}

function cases(shape: number[]): BenchCase[] {
  const S = prod(shape.slice(2));
  return [
    ewCase(shape, 'add', 'dense', 2, (x, y) => F.add(x, y), (X, Y, _w, f) => X[f] + Y[f]),
    ewCase(shape, 'prelu', 'per-channel broadcast', 1, (x, _y, w) => F.prelu(x, w), (X, _y, W, f, s) => {
      const c = Math.floor(f / S) % s[1];
      return X[f] >= 0 ? X[f] : W[c] * X[f];
    }),
    ewCase(shape, 'copy', 'transposed view (H <-> W)', 1, (x) => F.contiguous(F.transpose(x, 3, 4)), (X, _y, _w, f, s) => {
      // out has shape s with H and W swapped; out[n, c, d, w, h] = x[n, c, d, h, w]
      const os = [s[0], s[1], s[2], s[4], s[3]];
      const [n, c, d, wi, hi] = unravel(f, os);
      return X[(((n * s[1] + c) * s[2] + d) * s[3] + hi) * s[4] + wi];
    }),
  ];
}

export const family: BenchFamily = { cases: cases([1, 16, 64, 128, 128]), quick: cases([1, 8, 16, 32, 32]).slice(1, 2) };
