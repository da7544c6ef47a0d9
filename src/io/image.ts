// 2-D images (PNG, JPEG) as the readers (png.ts, jpeg.ts) return them: row-major pixels, grey or RGB
// interleaved, at the file's bit depth (8 or 16), alpha dropped and palettes expanded; the pixel
// limit both check before allocating; to8Bit maps a 16-bit image linearly onto 0..255 (its own
// min..max), the range MedSAM's pre-processing expects (medsamPreprocess takes an 8-bit image).

export interface Image2D {
  width: number;
  height: number;
  /** 1 grey, 3 RGB */
  channels: 1 | 3;
  bitDepth: 8 | 16;
  /** width * height * channels values, row-major, channels interleaved */
  data: Uint8Array | Uint16Array;
  /** what the reader changed or ignored (transparency dropped, ...) */
  warnings: string[];
}

export interface ImageReadOptions {
  /** refuse images with more pixels than this before allocating them (default 2^26, 8192 x 8192) */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 1 << 26;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export const isPng = (b: Uint8Array): boolean => b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v);
export const isJpeg = (b: Uint8Array): boolean => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Refuses width x height before anything of that size is allocated. */
export function checkPixels(name: string, width: number, height: number, options: ImageReadOptions): void {
  const max = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (width * height > max) throw new Error(`${name}: ${width}x${height} pixels (${((width * height) / 1e6).toFixed(1)} megapixels) is more than the limit of ${max} pixels (maxPixels)`);
}

/** The image with 8-bit values: 8-bit as it is; 16-bit mapped linearly from its min..max onto 0..255 (truncated), with a note saying so. */
export function to8Bit(image: Image2D): { image: Image2D; note?: string } {
  if (image.bitDepth === 8) return { image };
  const d = image.data;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < d.length; i++) {
    if (d[i] < lo) lo = d[i];
    if (d[i] > hi) hi = d[i];
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Math.trunc((d[i] - lo) * scale);
  return {
    image: { ...image, bitDepth: 8, data: out },
    note: `16-bit values ${lo}..${hi} mapped linearly onto 0..255`,
  };
}
