// Split reductions for the conv kernels, shared by the implicit-GEMM and direct launchers: the
// loop budget of one invocation, the split of a long reduction into chunks whose partials a second
// pass sums pairwise, and dispatches whose z runs past the per-dimension workgroup limit or whose
// work runs past the dispatch work bound (loop-budget.ts's DISPATCH_WORK: GPU watchdogs).
import { runtime, type DispatchSpec } from '../gpu/runtime.js';
import { scope } from '../scope.js';
import { Tensor } from '../tensor.js';
import { LOOP_BUDGET, chunks, dispatchWorkBound, unitsPerChunk } from './loop-budget.js';


// Mesa's llvmpipe counts the loop iterations of an invocation across all of its loops and, past
// 65535 (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, "shared between every loop"), leaves every loop at
// once, with no error: long reductions came out as partial sums, and outputs stored by loops after
// them were left unwritten. So no conv kernel lets one invocation run more than LOOP_BUDGET
// iterations: each launcher counts its kernel's loops (every loop, constant trip counts and each
// loop's final exit test included, as no compiler is trusted to unroll) per step of the reduction,
// splits the reduction into chunks that fit, and a second pass sums the chunks' partials pairwise
// (sum_splits in _conv_epilogue.wgsl) and applies the epilogue. Short chunks summed pairwise also
// keep f32 rounding near that of a blocked reduction (long sequential f32 sums lost precision).

/** Loop iterations one invocation may run (LOOP_BUDGET of loop-budget.ts: a quarter of llvmpipe's limit). */
let loopBudget = LOOP_BUDGET;
/** Partials one sum_splits call adds (at most 4096; about 3 loop iterations per 8); more are folded first. */
let SUM_GROUP = 4096;
/** Largest buffer of partial sums; a reduction with more runs in slabs of its output. */
let PARTIAL_BYTES = 64 << 20;

export interface ConvReductionLimits {
  loopBudget: number;
  sumGroup: number;
  partialBytes: number;
}

/**
 * Sets the split-reduction limits (tests: small values take the split, fold and slab paths at
 * small shapes); returns the previous ones. No argument restores the defaults.
 */
export function setConvReductionLimits(l: Partial<ConvReductionLimits> = { loopBudget: LOOP_BUDGET, sumGroup: 4096, partialBytes: 64 << 20 }): ConvReductionLimits {
  const prev = { loopBudget, sumGroup: SUM_GROUP, partialBytes: PARTIAL_BYTES };
  loopBudget = l.loopBudget ?? loopBudget;
  SUM_GROUP = Math.max(2, Math.min(4096, l.sumGroup ?? SUM_GROUP));
  PARTIAL_BYTES = l.partialBytes ?? PARTIAL_BYTES;
  return prev;
}

/** The loop passes one invocation of a conv kernel may run. */
export function convLoopBudget(): number {
  return loopBudget;
}

export type Spec = Omit<DispatchSpec, 'workgroups'> & { params: NonNullable<DispatchSpec['params']> };

/**
 * Dispatches `x` x `z` workgroups, z in slices under the per-dimension limit (the kernel adds
 * params.z0) and, when the grid's `work` (multiply-adds) passes the dispatch work bound, in slices
 * of z within it, each submitted on its own (see chunks()).
 */
export function dispatchZ(spec: Spec, x: number, z: number, work = 0): void {
  const rt = runtime();
  const max = rt.limits.maxComputeWorkgroupsPerDimension;
  const bounded = work > dispatchWorkBound();
  const zPer = bounded ? Math.min(max, unitsPerChunk(z, work / z)) : max;
  const [gx, gy] = rt.grid(x);
  chunks(z, zPer, (z0, n) => rt.dispatch({ ...spec, params: { ...spec.params, z0 }, workgroups: [gx, gy, n] }), bounded && zPer < z);
}

/**
 * A split reduction over `units` output units of `unitElems` values each, in slabs whose partials
 * fit in PARTIAL_BYTES (slab sizes a multiple of `align` units): per slab, split(part, u0, n)
 * writes the partials [splits, n * unitElems] of units u0 .. u0+n-1 to `part`, and
 * finish(src, u0, n, count) sums the `count` partials of each value in `src` and stores the result;
 * more than SUM_GROUP partials are first summed in groups (conv_fold), also pairwise. The
 * partial-sum buffers are freed when it returns. `unitWork` (the split pass's multiply-adds per
 * unit) also bounds the slabs by the dispatch work bound; such slabs are submitted one by one.
 */
export function splitReduce(
  splits: number,
  units: number,
  unitElems: number,
  align: number,
  context: string,
  split: (part: Tensor, u0: number, n: number) => void,
  finish: (src: Tensor, u0: number, n: number, count: number) => void,
  unitWork = 0,
): void {
  const rt = runtime();
  const cap = Math.min(PARTIAL_BYTES, rt.limits.maxStorageBufferBindingSize);
  const perBytes = Math.min(units, Math.max(align, Math.floor(cap / (4 * splits * unitElems * align)) * align));
  const per = Math.min(perBytes, unitsPerChunk(units, unitWork, align));
  scope(() => {
    const part = Tensor.empty([splits * per * unitElems], `${context} partial sums`);
    chunks(units, per, (u0, n) => {
      split(part, u0, n);
      let src = part;
      let count = splits;
      while (count > SUM_GROUP) {
        const elems = n * unitElems;
        const rows = Math.ceil(count / SUM_GROUP);
        const folded = Tensor.empty([rows * elems], `${context} partial sums`);
        rt.dispatch({
          kernel: 'conv',
          entry: 'conv_fold',
          params: { elems, splits: count, group: SUM_GROUP },
          buffers: { partials: src.buffer, out: folded.buffer },
          workgroups: Math.ceil((rows * elems) / 64),
          context: `${context} [fold partials]`,
        });
        src = folded;
        count = rows;
      }
      finish(src, u0, n, count);
    }, per < perBytes);
  });
}
