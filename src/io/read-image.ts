// readImage: a PNG or a JPEG file, told apart by its signature (not its name), read by png.ts or jpeg.ts.
import { isJpeg, isPng, type Image2D, type ImageReadOptions } from './image.js';
import { readJpeg } from './jpeg.js';
import { readPng } from './png.js';

export function readImage(bytes: Uint8Array, name = 'image', options: ImageReadOptions = {}): Image2D {
  if (isPng(bytes)) return readPng(bytes, name, options);
  if (isJpeg(bytes)) return readJpeg(bytes, name, options);
  const head = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(`${name}: neither a PNG nor a JPEG file (it starts ${head ? `with bytes ${head}` : 'empty'})`);
}
