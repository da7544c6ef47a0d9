// The viewer's geometry, as pure functions: which voxel axes the axial, coronal and sagittal views
// show and in which direction (from the affine, as nibabel's aff2axcodes finds each voxel axis's
// nearest world axis), slice extraction into RGBA with window/level and coloured mask overlays,
// and voxel -> world (mm) through the affine. Views follow the radiological convention: the
// patient's right on the screen's left, anterior up in axial, superior up in coronal and sagittal.
import type { Volume } from '../src/io/index.js';

export type ViewName = 'axial' | 'coronal' | 'sagittal';
export const VIEWS: readonly ViewName[] = ['axial', 'coronal', 'sagittal'];

/** One view: the voxel axis it slices along, and the voxel axes across (h) and down (v) the screen. */
export interface ViewSpec {
  name: ViewName;
  sliceAxis: number;
  hAxis: number;
  vAxis: number;
  /** screen coordinate runs against the voxel index */
  hFlip: boolean;
  vFlip: boolean;
}

/** For each voxel axis (i, j, k): the world axis (0 x, 1 y, 2 z, RAS+) it runs nearest to, and the sign. */
export function axisCodes(affine: number[][]): { world: number; sign: number }[] {
  const used = new Set<number>();
  const out: { world: number; sign: number }[] = [];
  // greedy on the largest entries, so two voxel axes never claim the same world axis
  const cells: { a: number; r: number; m: number }[] = [];
  for (let a = 0; a < 3; a++) for (let r = 0; r < 3; r++) cells.push({ a, r, m: Math.abs(affine[r][a]) });
  cells.sort((p, q) => q.m - p.m);
  const taken = new Set<number>();
  for (const { a, r } of cells) {
    if (taken.has(a) || used.has(r)) continue;
    taken.add(a);
    used.add(r);
    out[a] = { world: r, sign: affine[r][a] < 0 ? -1 : 1 };
  }
  return out;
}

export function viewSpecs(affine: number[][]): Record<ViewName, ViewSpec> {
  const codes = axisCodes(affine);
  const voxelAxisOf = (w: number) => codes.findIndex((c) => c.world === w);
  const sign = (w: number) => codes[voxelAxisOf(w)].sign;
  const [X, Y, Z] = [voxelAxisOf(0), voxelAxisOf(1), voxelAxisOf(2)];
  // screen x grows toward the patient's left (-X) in axial and coronal, toward anterior (+Y) in
  // sagittal; screen y grows downward: toward posterior (-Y) in axial, inferior (-Z) otherwise
  return {
    axial: { name: 'axial', sliceAxis: Z, hAxis: X, vAxis: Y, hFlip: sign(0) > 0, vFlip: sign(1) > 0 },
    coronal: { name: 'coronal', sliceAxis: Y, hAxis: X, vAxis: Z, hFlip: sign(0) > 0, vFlip: sign(2) > 0 },
    sagittal: { name: 'sagittal', sliceAxis: X, hAxis: Y, vAxis: Z, hFlip: sign(1) < 0, vFlip: sign(2) > 0 },
  };
}

/** Pixel size of a view's slice image and the physical size (mm) of one of its pixels. */
export function sliceSize(vol: Pick<Volume, 'dims' | 'spacing'>, s: ViewSpec): { width: number; height: number; pxW: number; pxH: number } {
  return { width: vol.dims[s.hAxis], height: vol.dims[s.vAxis], pxW: vol.spacing[s.hAxis], pxH: vol.spacing[s.vAxis] };
}

/** The voxel (i, j, k) shown at slice pixel (u, v) of slice `index`. */
export function pixelToVoxel(s: ViewSpec, dims: readonly number[], index: number, u: number, v: number): [number, number, number] {
  const ijk: [number, number, number] = [0, 0, 0];
  ijk[s.sliceAxis] = index;
  ijk[s.hAxis] = s.hFlip ? dims[s.hAxis] - 1 - u : u;
  ijk[s.vAxis] = s.vFlip ? dims[s.vAxis] - 1 - v : v;
  return ijk;
}

/** The slice pixel (u, v) where voxel (i, j, k) appears in a view. */
export function voxelToPixel(s: ViewSpec, dims: readonly number[], ijk: readonly number[]): [number, number] {
  const u = s.hFlip ? dims[s.hAxis] - 1 - ijk[s.hAxis] : ijk[s.hAxis];
  const v = s.vFlip ? dims[s.vAxis] - 1 - ijk[s.vAxis] : ijk[s.vAxis];
  return [u, v];
}

export const voxelIndex = (dims: readonly number[], ijk: readonly number[]) => (ijk[2] * dims[1] + ijk[1]) * dims[0] + ijk[0];

export function voxelToWorld(affine: number[][], ijk: readonly number[]): [number, number, number] {
  const w = [0, 1, 2].map((r) => affine[r][0] * ijk[0] + affine[r][1] * ijk[1] + affine[r][2] * ijk[2] + affine[r][3]);
  return [w[0], w[1], w[2]];
}

export interface Overlay {
  mask: ArrayLike<number>;
  rgb: readonly [number, number, number];
  opacity: number;
  /** a label map: voxel value c > 0 is drawn in classColour(c) instead of rgb */
  multiClass?: boolean;
}

const CLASS_COLOURS: readonly (readonly [number, number, number])[] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [170, 110, 40],
];

/** The overlay colour of class id c >= 1 in a multi-class label map: twelve distinct colours, then hues a golden angle apart. */
export function classColour(c: number): readonly [number, number, number] {
  if (c >= 1 && c <= CLASS_COLOURS.length) return CLASS_COLOURS[c - 1];
  const h = ((c * 137.508) % 360) / 60;
  const x = 1 - Math.abs((h % 2) - 1);
  const [r, g, b] = h < 1 ? [1, x, 0] : h < 2 ? [x, 1, 0] : h < 3 ? [0, 1, x] : h < 4 ? [0, x, 1] : h < 5 ? [x, 0, 1] : [1, 0, x];
  return [Math.round(40 + 200 * r), Math.round(40 + 200 * g), Math.round(40 + 200 * b)];
}

/** The gray values (0..255) of one slice under window (width, level), row-major width x height. */
export function sliceGray(vol: Pick<Volume, 'data' | 'dims'>, s: ViewSpec, index: number, width: number, level: number): Uint8ClampedArray {
  const { dims } = vol;
  const W = dims[s.hAxis];
  const H = dims[s.vAxis];
  const out = new Uint8ClampedArray(W * H);
  const lo = level - width / 2;
  const scale = 255 / Math.max(width, 1e-6);
  for (let v = 0; v < H; v++)
    for (let u = 0; u < W; u++) out[v * W + u] = (vol.data[voxelIndex(dims, pixelToVoxel(s, dims, index, u, v))] - lo) * scale;
  return out;
}

/** One slice as RGBA: the windowed scan with each overlay blended where its mask is > 0 (a multi-class one in its class's colour). */
export function sliceRgba(vol: Pick<Volume, 'data' | 'dims'>, s: ViewSpec, index: number, width: number, level: number, overlays: readonly Overlay[]): ImageData {
  const { dims } = vol;
  const W = dims[s.hAxis];
  const H = dims[s.vAxis];
  const gray = sliceGray(vol, s, index, width, level);
  const img = new ImageData(W, H);
  const px = img.data;
  for (let v = 0; v < H; v++)
    for (let u = 0; u < W; u++) {
      const p = v * W + u;
      let r = gray[p];
      let g = r;
      let b = r;
      const vi = voxelIndex(dims, pixelToVoxel(s, dims, index, u, v));
      for (const o of overlays) {
        if (o.opacity <= 0 || !(o.mask[vi] > 0)) continue;
        const rgb = o.multiClass ? classColour(o.mask[vi]) : o.rgb;
        r += (rgb[0] - r) * o.opacity;
        g += (rgb[1] - g) * o.opacity;
        b += (rgb[2] - b) * o.opacity;
      }
      px[4 * p] = r;
      px[4 * p + 1] = g;
      px[4 * p + 2] = b;
      px[4 * p + 3] = 255;
    }
  return img;
}

/** Window/level presets: CT in Hounsfield units; MR from the scan's own intensity percentiles. */
export const CT_PRESETS: Record<string, { width: number; level: number }> = {
  'CT soft tissue': { width: 400, level: 40 },
  'CT abdomen (liver)': { width: 150, level: 60 },
  'CT lung': { width: 1500, level: -600 },
  'CT bone': { width: 1800, level: 400 },
  'CT brain': { width: 80, level: 40 },
};

/** Photos and screenshots (PNG / JPEG): the full 8-bit range. */
export const IMAGE_PRESET = { name: 'Image (0 to 255)', width: 255, level: 127.5 };

/** MR window: the 1st to 99.5th percentile of the non-zero voxels (a sample of up to 200k). */
export function percentileWindow(data: Float32Array, lowP = 0.01, highP = 0.995): { width: number; level: number } {
  const step = Math.max(1, Math.floor(data.length / 200_000));
  const vals: number[] = [];
  for (let i = 0; i < data.length; i += step) if (data[i] !== 0 && Number.isFinite(data[i])) vals.push(data[i]);
  if (!vals.length) return { width: 1, level: 0 };
  vals.sort((a, b) => a - b);
  let lo = vals[Math.floor(lowP * (vals.length - 1))];
  let hi = vals[Math.floor(highP * (vals.length - 1))];
  if (hi - lo < 1e-6) {
    // one non-zero value (a mask, a two-tone image): zero to it
    lo = Math.min(0, lo);
    hi = Math.max(0, hi);
  }
  return { width: Math.max(hi - lo, 1e-3), level: (hi + lo) / 2 };
}

/** Whether a scan looks like CT (air near -1000 HU present). */
export function looksLikeCt(data: Float32Array): boolean {
  let lo = Infinity;
  for (let i = 0; i < data.length; i += 7) lo = Math.min(lo, data[i]);
  return lo <= -500 && lo >= -3100;
}
