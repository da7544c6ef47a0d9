// max/min/argmax/argmin must not rely on infinities or on `x != x` (WGSL lets an implementation
// assume there is no NaN or infinity, and fast-math compilers fold such tests): shaders/reduce.wgsl
// starts each accumulator empty and takes the first element, and finds NaN by its bits. Checked
// against a float64 reference with PyTorch's semantics (the first NaN wins; ties go to the first
// index) on rows of -inf, +inf, -FLT_MAX, +FLT_MAX, NaN and very negative values, through each of
// the three kernels (one invocation per row, a workgroup per row, rows split into chunks).
import { beforeAll, describe, expect, it } from 'vitest';
import { F, tensor } from '../../src/index.js';
import { ready } from '../helpers.js';

beforeAll(ready);

const FMAX = 3.4028234663852886e38;

type Red = 'max' | 'min' | 'argmax' | 'argmin';

/** PyTorch's reductions over the last dim: the first NaN wins, ties go to the first index. */
function refReduce(x: Float32Array, rows: number, n: number, op: Red): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let i = 1; i < n; i++) {
      const v = x[r * n + i];
      const b = x[r * n + best];
      if (Number.isNaN(b)) break;
      if (Number.isNaN(v) || (op === 'max' || op === 'argmax' ? v > b : v < b)) best = i;
    }
    out.push(op === 'argmax' || op === 'argmin' ? best : x[r * n + best]);
  }
  return out;
}

/** Rows of edge values, `n` long each. */
function edgeRows(n: number): Float32Array[] {
  const rows: Float32Array[] = [];
  const fill = (f: (i: number) => number) => rows.push(Float32Array.from({ length: n }, (_, i) => f(i)));
  fill(() => -Infinity);
  fill(() => Infinity);
  fill(() => -FMAX);
  fill(() => FMAX);
  fill((i) => (i === n - 1 ? -FMAX : -Infinity)); // the one finite value is last
  fill((i) => (i === n - 1 ? FMAX : Infinity));
  fill((i) => (i === Math.floor(n / 3) || i === n - 2 ? NaN : Math.sin(i))); // two NaN: the first wins
  fill(() => NaN);
  fill((i) => -3e38 + (i === Math.floor(n / 2) ? 1e32 : 0)); // very negative, one a little larger
  fill((i) => Math.cos(i * 0.37) * 1e-3);
  return rows;
}

async function checkReductions(n: number, copies: number, what: string): Promise<void> {
  const base = edgeRows(n);
  const rows = base.length * copies;
  const x = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) x.set(base[r % base.length], r * n);
  const t = tensor(x, [rows, n]);
  for (const op of ['max', 'min', 'argmax', 'argmin'] as Red[]) {
    const got = await F[op](t, -1).read();
    const want = refReduce(x, rows, n, op);
    for (let r = 0; r < rows; r++) {
      const g = got[r];
      const w = want[r];
      const same = Number.isNaN(w) ? Number.isNaN(g) : g === w;
      expect(same, `${op} of ${what} row ${r} (case ${r % base.length}): got ${g}, want ${w}`).toBe(true);
    }
  }
  t.dispose();
}

describe('reductions without infinite identities', () => {
  it('max/min/argmax/argmin of rows of -inf, +-FLT_MAX, NaN and very negative values: one invocation per row', async () => {
    await checkReductions(37, 1, '37-long rows');
  });
  it('the same with a workgroup per row (rows of 1000)', async () => {
    await checkReductions(1000, 1, '1000-long rows');
  });
  it('the same with rows split into chunks and merged (rows of 360,000)', async () => {
    // one row per edge case, each longer than one workgroup takes (src/ops/reduce.ts: 349,184)
    const n = 360_000;
    // -inf, the one finite value last, and two NaN: each merged across chunks
    const base = edgeRows(n).filter((_, i) => i === 0 || i === 4 || i === 6);
    const x = new Float32Array(base.length * n);
    base.forEach((row, r) => x.set(row, r * n));
    const t = tensor(x, [base.length, n]);
    for (const op of ['max', 'argmax', 'argmin'] as Red[]) {
      const got = await F[op](t, -1).read();
      const want = refReduce(x, base.length, n, op);
      want.forEach((w, r) => expect(Number.isNaN(w) ? Number.isNaN(got[r]) : got[r] === w, `${op} chunked row ${r}: got ${got[r]}, want ${w}`).toBe(true));
    }
    t.dispose();
  });
});

