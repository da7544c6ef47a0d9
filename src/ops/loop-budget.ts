// The loop budget of one shader invocation, and the split of loop nests into launches that keep to
// it (llvmpipe silently leaves every loop of an invocation past 65535 passes).
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
