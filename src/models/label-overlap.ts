// Overlap of two label maps on the host (a prediction against a reference on the same grid): the
// voxels each has of one class, those they share, and the Dice 2|P ∩ R| / (|P| + |R|), which is null
// where neither has the class (the score is undefined there: a caller says what it shows instead).
// With no class given, the foreground: every value above 0.

export interface LabelOverlap {
  dice: number | null;
  predicted: number;
  reference: number;
  intersection: number;
}

/** The overlap of `cls` (or of the foreground, > 0) between `predicted` and `reference`. */
export function labelOverlap(predicted: ArrayLike<number>, reference: ArrayLike<number>, cls?: number): LabelOverlap {
  if (predicted.length !== reference.length) throw new Error(`labelOverlap: the label maps differ in size (${predicted.length} and ${reference.length} voxels)`);
  const has = cls === undefined ? (v: number) => v > 0 : (v: number) => v === cls;
  let p = 0;
  let r = 0;
  let both = 0;
  for (let i = 0; i < predicted.length; i++) {
    const a = has(predicted[i]);
    const b = has(reference[i]);
    if (a) p++;
    if (b) r++;
    if (a && b) both++;
  }
  return { dice: p + r ? (2 * both) / (p + r) : null, predicted: p, reference: r, intersection: both };
}
