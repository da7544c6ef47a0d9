// The loop budget of one shader invocation, and the split of loop nests into launches that keep to
// it (llvmpipe silently leaves every loop of an invocation past 65535 passes), and the work bound
// of one dispatch with the split of a launch into chunks that keep to it (GPU watchdogs).
import { runtime } from '../gpu/runtime.js';

/**
 * Loop passes one invocation may run in one launch, counting every pass of every loop it runs
 * (inner loops in full, and the per-dim loop of strided_offset for each element it indexes).
 * Mesa's llvmpipe (gallivm; Mesa 22.3.6 through Dawn's OpenGL backend) keeps one counter of 65535
 * loop passes per batch of 8 invocations, shared by all the loops of the shader, and silently
 * leaves every loop once it runs out (later loops then run one pass each). Kernels whose loops
 * grow with the problem split the work (more launches, or chunks merged in a second pass) so that
 * no invocation runs more than this, a quarter of that limit.
 */
export const LOOP_BUDGET = 16384;

let tileBudget = LOOP_BUDGET;

/** Tests: a smaller budget for loopTiles, so loop nests split into many launches at small sizes; null restores it. */
export function setTileBudget(passes: number | null): void {
  tileBudget = passes ?? LOOP_BUDGET;
}

/**
 * Splits nested loops of the given trip counts (outermost first) into tiles whose passes, counted
 * as llvmpipe counts them (trips + 1 per loop entered), stay within LOOP_BUDGET less `reserve` (the
 * passes of the kernel's other loops). Returns the tile length per loop; the launches walk the
 * tiles in row-major order, so a split inner loop always comes with single-trip outer tiles and
 * the iteration order of the whole nest is kept.
 */
export function loopTiles(trips: readonly number[], reserve = 0): number[] {
  const budget = Math.max(2, tileBudget - reserve);
  const tiles = new Array<number>(trips.length);
  let inner = 0; // passes of one trip of the loop at depth d (the loops inside it)
  for (let d = trips.length - 1; d >= 0; d--) {
    const per = inner + 1;
    tiles[d] = Math.max(1, Math.min(trips[d], Math.floor((budget - 1) / per)));
    inner = tiles[d] * per + 1;
  }
  // Keep row-major order: the loops outside the innermost split one take one trip per tile.
  let split = -1;
  tiles.forEach((t, d) => {
    if (t < trips[d]) split = d;
  });
  for (let d = 0; d < split; d++) tiles[d] = 1;
  return tiles;
}

// ---- the work bound of one dispatch (GPU watchdogs) ----
/**
 * Multiply-adds one dispatch may run. Display drivers reset a GPU whose submission runs past a
 * timeout (Windows TDR: 2 s; macOS and Linux similar), and WebGPU reports the device lost: the
 * paper V-Net's up_tr32 conv (1.3e11 multiply-adds at 128x128x64) or 4096-token attention
 * backward in one dispatch takes seconds on a laptop GPU. Launches over this bound (about 0.2 s
 * at 25 G multiply-adds/s, a weak integrated GPU running the naive kernels) run as several
 * dispatches along an output axis, each submitted on its own (the runtime batches every dispatch
 * into one command buffer until a sync point, and a watchdog times a submission); launches under
 * it run as before.
 */
export const DISPATCH_WORK = 2 ** 32;

let dispatchWork = DISPATCH_WORK;

/** Tests: a smaller dispatch work bound, so small launches split into chunks; null restores it. Returns the previous bound. */
export function setDispatchWork(macs: number | null): number {
  const prev = dispatchWork;
  if (macs !== null && !(macs >= 1)) throw new Error(`setDispatchWork: the bound must be at least 1 multiply-add, got ${macs}`);
  dispatchWork = macs ?? DISPATCH_WORK;
  return prev;
}

/** The multiply-adds one dispatch may run (DISPATCH_WORK unless a test set it). */
export function dispatchWorkBound(): number {
  return dispatchWork;
}

/** Units per chunk of a launch of `units` units of `unitWork` multiply-adds each: a multiple of `align`, at least `align`. */
export function unitsPerChunk(units: number, unitWork: number, align = 1): number {
  return Math.min(units, Math.max(align, Math.floor(dispatchWork / Math.max(1, unitWork) / align) * align));
}

/**
 * Runs fn(u0, n) over `units` in chunks of `per`. With `submit` (a launch split for the dispatch
 * work bound), the batch is submitted before each chunk and after the last: the runtime encodes
 * every dispatch into one command buffer until a sync point, and some drivers' watchdogs time a
 * whole submission, so chunks in one submission would trip it as one dispatch would.
 */
export function chunks(units: number, per: number, fn: (u0: number, n: number) => void, submit = per < units): void {
  const rt = submit ? runtime() : null; // most launches are one unsubmitted chunk
  for (let u0 = 0; u0 < units; u0 += per) {
    rt?.flush();
    fn(u0, Math.min(per, units - u0));
  }
  rt?.flush();
}
