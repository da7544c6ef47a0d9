// Elementwise benchmarks (memory-bound): a dense add, a per-channel broadcast (PReLU over a V-Net
// activation) and the copy of a transposed view, over V-Net's widest tensor at full size
// (16 x 64 x 128 x 128 = 16.8M values). Bytes count each operand read and the output written once.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase } from './case.js';

const SHAPE = [1, 16, 64, 128, 128];
const N = SHAPE.reduce((a, b) => a * b, 1);

function ewCase(name: string, variant: string, operands: number, op: (x: Tensor, y: Tensor, w: Tensor) => Tensor): BenchCase {
  let held: Tensor[] = [];
  return {
    name: `${name} ${SHAPE.join('x')}`,
    variant,
    flops: N,
    bytes: 4 * N * (operands + 1),
    setup() {
      const x = randn(SHAPE);
      const y = randn(SHAPE);
      const w = randn([SHAPE[1], 1, 1, 1]);
      held = [x, y, w];
      return () => op(x, y, w).dispose();
    },
    teardown() {
      for (const t of held) t.dispose();
      held = [];
    },
  };
}

export const cases: BenchCase[] = [
  ewCase('add', 'dense', 2, (x, y) => F.add(x, y)),
  ewCase('prelu', 'per-channel broadcast', 1, (x, _y, w) => F.prelu(x, w)),
  ewCase('copy', 'transposed view (H <-> W)', 1, (x) => F.contiguous(F.transpose(x, 3, 4))),
];
