// TransUNet's training data from labelled scans, as `medseg train --model transunet` and the demo
// page train on it: a label map's values as class indices, a volume's axial slices clipped to the
// window and scaled to [0, 1] with their labels (a slice's rows are its y, as inference.ts reads
// them), and one step's batch: slices drawn uniformly, each through RandomGenerator to size x size.
import type { Volume } from '../../io/nifti.js';
import { TRANSUNET_CT_WINDOW, transunetWindow } from './inference.js';
import { randomGenerator, type TrainingSlice } from './train.js';

/** Label values as class indices: whole numbers 0-255 (`what` names them in the error), and the largest. */
export function labelClasses(values: ArrayLike<number>, what: string): { data: Uint8Array; max: number } {
  const out = new Uint8Array(values.length);
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isInteger(x) || x < 0 || x > 255) throw new Error(`${what}: value ${x} is not a class (whole numbers 0-255; label maps hold class indices)`);
    out[i] = x;
    if (x > max) max = x;
  }
  return { data: out, max };
}

/**
 * The axial slices z0..z1 (inclusive; default all) of a scan and its label volume (the same grid):
 * each slice windowed to [0, 1] (default [-125, 275] HU) with its classes; `what` names the label in
 * errors ('label map L' gives 'label map L slice 3: value 0.5 is not a class ...').
 */
export function volumeTrainingSlices(
  scan: Pick<Volume, 'data' | 'dims'>,
  label: Pick<Volume, 'data' | 'dims'>,
  { window = TRANSUNET_CT_WINDOW, range = null, what = 'label' }: { window?: readonly [number, number]; range?: readonly [number, number] | null; what?: string } = {},
): { slices: TrainingSlice[]; maxLabel: number } {
  const [nx, ny, nz] = scan.dims;
  if (label.dims.join() !== scan.dims.join()) throw new Error(`${what} is ${label.dims.join('x')} voxels, its scan ${scan.dims.join('x')}: they must match`);
  const [z0, z1] = range ?? [0, nz - 1];
  if (!(Number.isInteger(z0) && Number.isInteger(z1) && z0 >= 0 && z0 <= z1 && z1 < nz)) throw new Error(`slices ${z0}-${z1} are not within the scan's ${nz} slices (0-${nz - 1})`);
  const plane = nx * ny;
  const slices: TrainingSlice[] = [];
  let maxLabel = 0;
  for (let z = z0; z <= z1; z++) {
    const l = labelClasses(label.data.subarray(z * plane, (z + 1) * plane), `${what} slice ${z}`);
    maxLabel = Math.max(maxLabel, l.max);
    // a slice's rows are its y (ny of them), each nx long: the planes train.ts takes
    slices.push({ image: { data: Float32Array.from(transunetWindow(scan.data.subarray(z * plane, (z + 1) * plane), window)), h: ny, w: nx }, label: { data: l.data, h: ny, w: nx } });
  }
  return { slices, maxLabel };
}

/** One step's batch: `batchSize` slices drawn uniformly, each augmented and zoomed by RandomGenerator; images [B, 1, S, S] and labels [B, S, S] as f32 values. */
export function trainingBatch(slices: readonly TrainingSlice[], size: number, batchSize: number, random: () => number): { images: Float32Array; labels: Float32Array } {
  if (slices.length === 0) throw new Error('TransUNet training: no training slices');
  const S = size;
  const images = new Float32Array(batchSize * S * S);
  const labels = new Float32Array(batchSize * S * S);
  for (let b = 0; b < batchSize; b++) {
    const g = randomGenerator(slices[Math.floor(random() * slices.length)], S, random);
    images.set(g.image.data, b * S * S);
    labels.set(g.label.data, b * S * S);
  }
  return { images, labels };
}
