// A PNG or JPEG opened as a one-slice volume: decoded by the browser (createImageBitmap), turned
// to gray (Rec. 601 luma, 0..255), and wrapped in a NIfTI-1 file of 1 mm pixels whose sform is
// diag(-1, -1, 1) (DICOM's LPS, so the viewer's axial view shows the picture upright and unmirrored),
// which io.readNifti reads like any scan: every mask written for it gets the same geometry.
import { io } from '../src/index.js';
import type { Volume } from '../src/io/index.js';

/** The NIfTI-1 bytes of a width x height float32 slice, rows top to bottom in `gray`. */
export function sliceNifti(gray: Float32Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(352 + gray.length * 4);
  const v = new DataView(out.buffer);
  v.setInt32(0, 348, true);
  [3, width, height, 1, 1, 1, 1, 1].forEach((d, i) => v.setInt16(40 + 2 * i, d, true));
  v.setInt16(70, 16, true); // float32
  v.setInt16(72, 32, true);
  [1, 1, 1, 1, 0, 0, 0, 0].forEach((p, i) => v.setFloat32(76 + 4 * i, p, true));
  v.setFloat32(108, 352, true); // vox_offset
  v.setFloat32(112, 1, true); // scl_slope
  out[123] = 2; // mm
  v.setInt16(254, 1, true); // sform_code: scanner
  // voxel (i, j) = pixel (column i, row j); world x = -i, y = -j
  const srow = [
    [-1, 0, 0, 0],
    [0, -1, 0, 0],
    [0, 0, 1, 0],
  ];
  srow.forEach((row, r) => row.forEach((x, c) => v.setFloat32(280 + 16 * r + 4 * c, x, true)));
  out.set([0x6e, 0x2b, 0x31, 0], 344); // 'n+1\0'
  for (let i = 0; i < gray.length; i++) v.setFloat32(352 + 4 * i, gray[i], true);
  return out;
}

/** Decodes a PNG/JPEG file into a one-slice gray volume. */
export async function readImageFile(file: Blob, name: string): Promise<Volume> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`${name}: the browser could not decode this image`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const px = ctx.getImageData(0, 0, width, height).data;
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) gray[i] = Math.round(0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]);
  return io.readNifti(sliceNifti(gray, width, height), name);
}
