// JPEG files: readJpeg (baseline and progressive, grey, YCbCr, CMYK) to an 8-bit Image2D with jpeg-js.
// Before decoding, the frame header (SOF) is found and its size checked against the pixel limit
// (maxPixels) and the file's length; jpeg-js's own caps (maxResolutionInMP, maxMemoryUsageInMB)
// bound what a damaged file can make it allocate. A grey JPEG (one component: jpeg-js returns it as R = G = B) reads as
// one channel. Errors name the file; jpeg-js's (some thrown as strings) are wrapped.
import { decode } from 'jpeg-js';
import { checkPixels, DEFAULT_MAX_PIXELS, type Image2D, type ImageReadOptions } from './image.js';

/** The frame's size and component count from the first SOFn marker, or null where none is found. */
function frameHeader(b: Uint8Array): { width: number; height: number; components: number } | null {
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = (b[at + 2] << 8) | b[at + 3];
    // SOF0-15 except DHT (c4), JPG (c8) and DAC (cc)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 10 > b.length) return null;
      return { height: (b[at + 5] << 8) | b[at + 6], width: (b[at + 7] << 8) | b[at + 8], components: b[at + 9] };
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data or the end before any frame header
    at += 2 + length;
  }
  return null;
}

export function readJpeg(bytes: Uint8Array, name = 'image.jpg', options: ImageReadOptions = {}): Image2D {
  if (bytes.length < 3 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error(`${name}: not a JPEG file (no start-of-image marker)`);
  const frame = frameHeader(bytes);
  if (!frame) throw new Error(`${name}: damaged or truncated: no frame header (SOF) before the image data`);
  if (frame.width === 0 || frame.height === 0) throw new Error(`${name}: damaged: the frame header gives ${frame.width}x${frame.height} pixels`);
  checkPixels(name, frame.width, frame.height, options);
  // every 8 x 8 block of the first component takes at least one bit (its DC code), so a file of n
  // bytes holds at most 512 n pixels
  if (frame.width * frame.height > 512 * bytes.length) throw new Error(`${name}: truncated or damaged: ${bytes.length} bytes cannot hold the ${frame.width}x${frame.height} pixels its frame header gives`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  let img;
  try {
    img = decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false, // a missing block row is an error, not grey
      maxResolutionInMP: maxPixels / 1e6,
      // the RGB output, the component planes and jpeg-js's block buffers (progressive: 2 bytes per coefficient)
      maxMemoryUsageInMB: Math.ceil((frame.width * frame.height * 12) / 2 ** 20) + 64,
    });
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    throw new Error(`${name}: damaged or truncated JPEG: ${m}`);
  }
  const { width, height } = img;
  const rgb = img.data;
  if (rgb.length !== width * height * 3) throw new Error(`${name}: damaged JPEG: decoded ${rgb.length} values for ${width}x${height} pixels`);
  if (frame.components === 1) {
    const grey = new Uint8Array(width * height);
    for (let p = 0; p < grey.length; p++) grey[p] = rgb[3 * p];
    return { width, height, channels: 1, bitDepth: 8, data: grey, warnings: [] };
  }
  return { width, height, channels: 3, bitDepth: 8, data: rgb, warnings: [] };
}
