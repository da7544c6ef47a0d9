// Test helpers shared by every op test: upload reference arrays, compare with the tolerance
// policy, and `checkOp`, which checks an op's forward against a float64 reference and its
// gradients against the reference's finite differences.
import { expect } from 'vitest';
import { init, memoryStats, runtime, tensor, Tensor } from '../src/index.js';
import { Arr, randomArr } from './reference/ndarray.js';
import { finiteDifference, sampleIndices, type RefFn } from './reference/gradcheck.js';
import { elementwiseTol, gradTol, type Tolerance } from './tolerance.js';

export const ready = () => init();

export function upload(a: Arr, requiresGrad = false): Tensor {
  return tensor(a.f32(), a.shape, { requiresGrad });
}

/** Asserts got ~= want under the policy; the message names the op, the shapes and the worst error. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, what: string, indices?: number[]): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const bound = tol.atol * Math.max(scale, 1e-30) + tol.rtol * Math.abs(want[i]) + (scale === 0 ? tol.atol : 0);
    const excess = Number.isNaN(got[i]) !== Number.isNaN(want[i]) ? Infinity : err - bound;
    if (excess > worstExcess || (Number.isNaN(excess) && worst < 0)) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    const at = indices ? indices[worst] : worst;
    expect.fail(`${what}: element ${at} is ${got[worst]}, expected ${want[worst]} (|err| ${Math.abs(got[worst] - want[worst]).toExponential(2)}, rtol ${tol.rtol}, scale ${scale.toExponential(2)})`);
  }
}

export interface OpCase {
  name: string;
  shapes: number[][];
  gpu: (...xs: Tensor[]) => Tensor;
  ref: RefFn;
  /** input value range per input (default [-1, 1]) */
  domains?: [number, number][];
  /** which inputs get gradients checked (default all); [] for none */
  gradInputs?: number[];
  tol?: Tolerance;
  /** transform uploaded inputs before the op (e.g. make a non-contiguous view); must keep values */
  prepare?: (x: Tensor, i: number) => Tensor;
  seed?: number;
}

/** Forward vs the float64 reference, and each input's gradient vs finite differences of it. */
export async function checkOp(c: OpCase): Promise<void> {
  const seed = c.seed ?? 7;
  const xs = c.shapes.map((s, i) => randomArr(s, seed * 101 + i, ...(c.domains?.[i] ?? [-1, 1])));
  const gradInputs = c.gradInputs ?? xs.map((_, i) => i);
  const leaves = xs.map((a, i) => upload(a, gradInputs.includes(i)));
  const inputs = leaves.map((t, i) => (c.prepare ? c.prepare(t, i) : t));
  const y = c.gpu(...inputs);
  const want = c.ref(...xs);
  const tol = c.tol ?? elementwiseTol();
  const label = `${c.name}(${c.shapes.map((s) => `[${s}]`).join(', ')})`;
  expect(y.shape, `${label}: output shape`).toEqual(want.shape);
  expectClose(await y.read(), want.data, tol, `${label} forward`);
  if (gradInputs.length) {
    const cot = randomArr(want.shape, seed * 7 + 3);
    const g = upload(cot);
    y.backward(g);
    for (const i of gradInputs) {
      const grad = leaves[i].grad;
      expect(grad, `${label}: input ${i} has a gradient`).not.toBeNull();
      expect(grad!.shape, `${label}: grad ${i} shape`).toEqual(xs[i].shape);
      const idx = sampleIndices(xs[i].size);
      const fd = finiteDifference(c.ref, xs, cot, i, idx);
      const all = await grad!.read();
      expectClose(idx.map((k) => all[k]), fd, gradTol(tol), `${label} grad of input ${i}`, idx);
    }
    g.dispose();
  }
  for (const t of [...leaves, ...inputs, y]) {
    t.grad?.dispose();
    t.dispose();
  }
}

/**
 * Tensor handles and GPU bytes held since start-up: live ones plus those the garbage collector
 * reclaimed. Unlike memoryStats()'s live counts, a collection of garbage that earlier tests dropped
 * does not change it, so a leak check compares two of these exactly.
 */
export function held(): { tensors: number; bytes: number } {
  const s = memoryStats();
  return { tensors: s.liveTensors + s.collectedTensors, bytes: s.liveBytes + s.collectedBytes };
}

/**
 * Leak check: runs `step` (one training step that disposes every handle it makes) once to create
 * shared scratch buffers and caches, then twice more; the tensor handles and bytes held (see
 * held()) must come back to their value after the first run.
 */
export async function expectStepLeavesNothing(step: () => Promise<void>): Promise<void> {
  await step();
  await runtime().sync();
  const before = held();
  await step();
  await step();
  await runtime().sync();
  const after = held();
  expect(after.tensors, 'tensor handles held after the step').toBe(before.tensors);
  expect(after.bytes, 'bytes held after the step').toBe(before.bytes);
}
