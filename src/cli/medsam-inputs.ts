// What `medseg segment --model medsam` and `medseg train --model medsam` share: the argument parsers
// (--box, --slice, --slices, --window), MedSAM's intensity windows as pre_CT_MR.py computes them
// (docs/models/medsam.md section 6: CT clipped to level +- width / 2 and rescaled over the clipped
// volume's own min..max to 0..255; MR clipped to the 0.5 / 99.5 percentiles of the non-zero voxels,
// rescaled, zero background kept; both truncated to uint8), a volume's slice as the predictor's
// image, 2-D inputs (PNG / JPEG), and the weights file: read and checked before the GPU opens
// (format, and for vit_b every key and shape against medsam_vit_b.pth's layout), loaded after.
import { readImage } from '../io/read-image.js';
import { to8Bit, type Image2D } from '../io/image.js';
import type { Volume } from '../io/nifti.js';
import { MedSAM, MEDSAM_CONFIGS, type MedSAMConfigName } from '../models/medsam/medsam.js';
import type { ImageInput } from '../models/medsam/preprocess.js';
import { openCheckpoint, planConversion } from '../weights/convert.js';
import { schemasFor } from '../weights/schemas/index.js';
import { bytesSource } from '../weights/source.js';
import { loadStrictly } from './weights-input.js';
import { CliError, numbersOf, oneOf, wholeNumber } from './args.js';
import { readInput } from './files.js';

export type Box = [number, number, number, number];

/** --box x0,y0,x1,y1: four numbers with x0 <= x1 and y0 <= y1 (pixels; x the first voxel index, y the second). */
export function parseBox(option: string, value: string | readonly number[]): Box {
  const v = numbersOf(typeof value === 'string' ? value.replace(/^\[|\]$/g, '').split(',') : value);
  if (v.length !== 4 || v.some((n) => !Number.isFinite(n) || n < 0) || v[0] > v[2] || v[1] > v[3]) {
    throw new CliError(`${option} must be x0,y0,x1,y1: four numbers ≥ 0 with x0 ≤ x1 and y0 ≤ y1, like 95,255,190,350, got '${String(value)}'`);
  }
  return v as Box;
}

/** --slices A-B (inclusive, whole numbers, A <= B). */
export function parseSliceRange(option: string, value: string | readonly number[]): [number, number] {
  const m = typeof value === 'string' ? /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(value) : null;
  const v = typeof value === 'string' ? (m ? [Number(m[1]), Number(m[2])] : []) : [...value];
  if (v.length !== 2 || !v.every(Number.isSafeInteger) || v[0] < 0 || v[0] > v[1]) throw new CliError(`${option} must be A-B, two whole slice numbers with A ≤ B, like 5-20, got '${String(value)}'`);
  return v as [number, number];
}

/** CT windows as level, width (HU); 'abdomen' is pre_CT_MR.py's default (40, 400). */
export const CT_WINDOWS = { abdomen: [40, 400], lung: [-600, 1500], bone: [400, 1800], brain: [40, 80] } as const;

/** --window abdomen|lung|bone|brain|mr, or level,width in HU. */
export function parseWindow(option: string, value: string): { kind: 'ct'; level: number; width: number; name: string } | { kind: 'mr' } {
  const lw = /^\s*([+-]?\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(value);
  if (lw && Number(lw[2]) > 0) return { kind: 'ct', level: Number(lw[1]), width: Number(lw[2]), name: `level ${lw[1]}, width ${lw[2]}` };
  if (value === 'mr') return { kind: 'mr' };
  if (value in CT_WINDOWS) {
    const [level, width] = CT_WINDOWS[value as keyof typeof CT_WINDOWS];
    return { kind: 'ct', level, width, name: value };
  }
  throw new CliError(`${option} must be ${Object.keys(CT_WINDOWS).join(', ')}, mr, or level,width in HU like 40,400, got '${value}'`);
}

/** The 0.5 / 99.5 percentiles of the non-zero values (numpy's linear interpolation). */
function nonZeroPercentiles(data: Float32Array): [number, number] | null {
  let n = 0;
  for (const v of data) if (v !== 0) n++;
  if (!n) return null;
  const nz = new Float32Array(n);
  let i = 0;
  for (const v of data) if (v !== 0) nz[i++] = v;
  nz.sort();
  const at = (p: number) => {
    const r = (n - 1) * p;
    const lo = Math.floor(r);
    return nz[lo] + (nz[Math.min(lo + 1, n - 1)] - nz[lo]) * (r - lo);
  };
  return [at(0.005), at(0.995)];
}

/**
 * The whole volume windowed to uint8 as pre_CT_MR.py does. `window` 'auto' picks the abdomen CT
 * window when the volume holds values below -200 (Hounsfield units), else MR; `chosen` says which.
 */
export function windowVolume(vol: Volume, window: ReturnType<typeof parseWindow> | 'auto'): { grey: Uint8Array; chosen: string } {
  const d = vol.data;
  let min = Infinity;
  for (const v of d) if (v < min) min = v;
  const w = window === 'auto' ? (min < -200 ? parseWindow('--window', 'abdomen') : ({ kind: 'mr' } as const)) : window;
  const auto = window === 'auto' ? ` (chosen because the scan's minimum is ${min}${min < -200 ? ' HU, so CT' : ', so not CT'}; --window sets it)` : '';
  const grey = new Uint8Array(d.length);
  if (w.kind === 'ct') {
    const a = w.level - w.width / 2;
    const b = w.level + w.width / 2;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of d) {
      const c = Math.min(b, Math.max(a, v));
      if (c < lo) lo = c;
      if (c > hi) hi = c;
    }
    // numpy's order of operations, (x - min) / (max - min) * 255: another order moves values that land on a whole number
    const r = hi > lo ? hi - lo : Infinity;
    for (let i = 0; i < d.length; i++) grey[i] = Math.trunc(((Math.min(b, Math.max(a, d[i])) - lo) / r) * 255);
    return { grey, chosen: `CT window ${w.name} (${a}..${b} HU)${auto}` };
  }
  const p = nonZeroPercentiles(d);
  if (!p) return { grey, chosen: `MR percentiles: every voxel is 0${auto}` };
  const [lo, hi] = p;
  const r = hi > lo ? hi - lo : Infinity;
  for (let i = 0; i < d.length; i++) grey[i] = d[i] === 0 ? 0 : Math.trunc(((Math.min(hi, Math.max(lo, d[i])) - lo) / r) * 255);
  return { grey, chosen: `MR: clipped to the non-zero voxels' 0.5 / 99.5 percentiles ${+lo.toFixed(3)}..${+hi.toFixed(3)}, zero background kept${auto}` };
}

/** Slice z of a windowed volume as a grey image (width nx, height ny: x the first voxel index). */
export function sliceImage(grey: Uint8Array, dims: readonly number[], z: number): ImageInput {
  const [nx, ny] = dims;
  return { data: grey.subarray(z * nx * ny, (z + 1) * nx * ny), width: nx, height: ny, channels: 1 };
}

/** A PNG or JPEG input as the predictor's image (16-bit mapped onto 0..255, said in `notes`). */
export function readImageInput(path: string, what: string): { image: ImageInput; source: Image2D; notes: string[] } {
  let img: Image2D;
  try {
    img = readImage(readInput(path, what), path);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${what} ${(e as Error).message}`);
  }
  const { image, note } = to8Bit(img);
  return { image: { data: image.data, width: image.width, height: image.height, channels: image.channels }, source: img, notes: [...img.warnings, ...(note ? [`${path}: ${note}`] : [])] };
}

export const isImagePath = (p: string): boolean => /\.(png|jpe?g)$/i.test(p);

export interface MedSAMWeightsInput {
  path: string;
  bytes: Uint8Array;
  config: MedSAMConfigName;
  notes: string[];
}

/**
 * Reads and checks a MedSAM weights file before the GPU opens: a .pth (medsam_vit_b.pth's layout, a
 * state dict or MedSAM's training checkpoint) or a .safetensors (converted, or written by medseg
 * train, whose metadata records its config). For vit_b every key and shape is checked here; other
 * configs are checked key by key when they load.
 */
export async function readMedSAMWeights(path: string, config: string | undefined, what = 'weights'): Promise<MedSAMWeightsInput> {
  if (config !== undefined) oneOf('--config', config, Object.keys(MEDSAM_CONFIGS) as MedSAMConfigName[]);
  const bytes = readInput(path, what);
  const src = bytesSource(bytes, path);
  const drop = (m: string) => (m.startsWith(path) ? m.slice(path.length).replace(/^:? /, '') : m);
  try {
    const ck = await openCheckpoint(src);
    const recorded = ck.metadata.medsam_config;
    if (recorded && config && recorded !== config) throw new CliError(`${what} ${path} holds MedSAM '${recorded}' weights (its metadata says so), not --config ${config}`);
    const chosen = (config ?? (recorded && recorded in MEDSAM_CONFIGS ? recorded : 'vit_b')) as MedSAMConfigName;
    const notes = [...ck.notes];
    if (chosen === 'vit_b') notes.push(...(await planConversion(src, { model: 'medsam', schemas: schemasFor('medsam') })).notes);
    return { path, bytes, config: chosen, notes };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${what} ${path}: ${drop((e as Error).message)}${config === undefined ? ' (if these are tiny-config weights, say --config tiny)' : ''}`);
  }
}

/** After the GPU opens: the model with the weights loaded strictly. */
export async function loadMedSAM(w: MedSAMWeightsInput): Promise<MedSAM> {
  return loadStrictly(new MedSAM({ config: w.config }), w);
}

/** Whole numbers in [0, n): --slice and the ends of --slices against the volume. */
export function checkSlice(option: string, z: number, nz: number): number {
  wholeNumber(option, z, 0);
  if (z >= nz) throw new CliError(`${option} ${z} is past the scan's last slice (${nz} slices: 0-${nz - 1})`);
  return z;
}

/** The box inside a width x height image. */
export function checkBoxInside(box: Box, width: number, height: number): void {
  if (box[2] > width || box[3] > height) throw new CliError(`--box ${box.join(',')} reaches outside the ${width}x${height} image (x0,y0,x1,y1 in pixels)`);
}
