// PNG files: readPng (every colour type, bit depths 1-16, interlaced or not) to an Image2D, writePng
// (grey / RGB, 8 or 16 bit) and writePngMask (a 0/1 mask as an 8-bit grey PNG of 0 and 255, as
// MedSAM_Inference.py saves its masks). Decoding is fast-png's; before it runs, this file walks the
// chunks itself so that a damaged or hostile file ends in an Error naming the file and what is wrong:
// the signature, each chunk's length against the file and its CRC, IHDR's fields, the pixel limit
// (maxPixels) before anything of the image's size is allocated, a lower bound on the compressed data
// (deflate expands at most 1032x), and the inflated size, which must be exactly what IHDR implies
// (inflation stops as soon as it is exceeded, so a decompression bomb is cut off).
import { decode, encode } from 'fast-png';
import { Unzlib } from 'fflate';
import { checkPixels, type Image2D, type ImageReadOptions } from './image.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** deflate's largest expansion (a 258-byte match per 2 bits, rounded up as zlib's own bound does) */
const DEFLATE_MAX_RATIO = 1032;

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

/** channels per colour type (PNG spec 11.2.2) and the bit depths each allows */
const COLOR_TYPES: Record<number, { channels: number; depths: number[]; what: string }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16], what: 'grey' },
  2: { channels: 3, depths: [8, 16], what: 'RGB' },
  3: { channels: 1, depths: [1, 2, 4, 8], what: 'palette' },
  4: { channels: 2, depths: [8, 16], what: 'grey + alpha' },
  6: { channels: 4, depths: [8, 16], what: 'RGBA' },
};

let crcTable: Uint32Array | null = null;
function crc32(b: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Bytes of filtered scanlines (a filter byte per line) that the image needs, per Adam7 pass when interlaced. */
function rawSize(h: Header): number {
  const bitsPerPixel = h.depth * COLOR_TYPES[h.colorType].channels;
  const lines = (w: number, rows: number) => (w > 0 && rows > 0 ? rows * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (h.interlace === 0) return lines(h.width, h.height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  return passes.reduce((s, [x, y, dx, dy]) => s + lines(Math.ceil((h.width - x) / dx), Math.ceil((h.height - y) / dy)), 0);
}

interface Walk {
  header: Header;
  idat: Uint8Array[];
  palette: Uint8Array | null;
  transparency: boolean;
}

/** Checks the chunk structure (signature, lengths, CRCs, IHDR first, IEND last) and collects IDAT, PLTE and tRNS. */
function walkChunks(b: Uint8Array, name: string, options: ImageReadOptions): Walk {
  if (b.length < 8 || !SIGNATURE.every((v, i) => b[i] === v)) throw new Error(`${name}: not a PNG file (no PNG signature)`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let header: Header | null = null;
  const idat: Uint8Array[] = [];
  let palette: Uint8Array | null = null;
  let transparency = false;
  let at = 8;
  for (;;) {
    if (at + 8 > b.length) throw new Error(`${name}: truncated: the file ends at byte ${b.length} ${header ? 'before its IEND chunk' : 'before its IHDR chunk'}`);
    const length = view.getUint32(at);
    const type = String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) throw new Error(`${name}: damaged: bytes ${at + 4}-${at + 7} should name a chunk, not ${JSON.stringify(type)}`);
    if (length > 0x7fffffff) throw new Error(`${name}: damaged: chunk ${type} at byte ${at} claims ${length} bytes (PNG allows at most 2^31 - 1)`);
    const end = at + 8 + length;
    if (end + 4 > b.length) throw new Error(`${name}: truncated: chunk ${type} at byte ${at} needs ${length + 12} bytes, the file ends ${b.length - at} bytes after its start`);
    if (view.getUint32(end) !== crc32(b, at + 4, end)) throw new Error(`${name}: damaged: the CRC of chunk ${type} at byte ${at} does not match its contents`);
    const data = b.subarray(at + 8, end);
    if (!header && type !== 'IHDR') throw new Error(`${name}: damaged: the first chunk is ${type}, not IHDR`);
    if (type === 'IHDR') {
      if (header) throw new Error(`${name}: damaged: a second IHDR chunk at byte ${at}`);
      if (length !== 13) throw new Error(`${name}: damaged: IHDR holds ${length} bytes, not 13`);
      const d = new DataView(data.buffer, data.byteOffset, 13);
      header = { width: d.getUint32(0), height: d.getUint32(4), depth: data[8], colorType: data[9], interlace: data[12] };
      const { width, height, depth, colorType, interlace } = header;
      if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) throw new Error(`${name}: damaged: the image is ${width}x${height} pixels (each side must be 1 to 2^31 - 1)`);
      const ct = COLOR_TYPES[colorType];
      if (!ct) throw new Error(`${name}: damaged: colour type ${colorType} (PNG has 0, 2, 3, 4 and 6)`);
      if (!ct.depths.includes(depth)) throw new Error(`${name}: damaged: bit depth ${depth} with colour type ${colorType} (${ct.what} allows ${ct.depths.join(', ')})`);
      if (data[10] !== 0 || data[11] !== 0) throw new Error(`${name}: damaged: compression method ${data[10]}, filter method ${data[11]} (PNG has only 0 and 0)`);
      if (interlace > 1) throw new Error(`${name}: damaged: interlace method ${interlace} (PNG has 0 and 1)`);
      checkPixels(name, width, height, options);
      if (interlace === 1 && depth < 8) throw new Error(`${name}: interlaced (Adam7) PNGs with ${depth}-bit samples are not supported; save it without interlacing or at 8 bits`);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'PLTE') {
      if (length === 0 || length % 3 !== 0 || length > 768) throw new Error(`${name}: damaged: PLTE holds ${length} bytes (1 to 256 colours of 3 bytes)`);
      palette = data;
    } else if (type === 'tRNS') {
      transparency = true;
    } else if (type === 'IEND') {
      break;
    }
    at = end + 4;
  }
  if (!header) throw new Error(`${name}: damaged: no IHDR chunk`);
  if (idat.length === 0) throw new Error(`${name}: damaged: no image data (IDAT chunk)`);
  if (header.colorType === 3 && !palette) throw new Error(`${name}: damaged: a palette image without its PLTE chunk`);
  return { header, idat, palette, transparency };
}

/** Inflates the IDAT stream only to count it: exactly `expected` bytes, stopping once more arrive. */
function checkInflatedSize(idat: Uint8Array[], expected: number, name: string): void {
  const compressed = idat.reduce((s, c) => s + c.length, 0);
  if (compressed * DEFLATE_MAX_RATIO < expected) {
    throw new Error(`${name}: truncated: ${compressed} bytes of compressed image data cannot hold the ${expected} bytes the image needs`);
  }
  let total = 0;
  const z = new Unzlib((chunk) => {
    total += chunk.length;
    if (total > expected) throw new Error(`${name}: damaged: the image data inflates to more than the ${expected} bytes the image needs`);
  });
  try {
    for (const c of idat) z.push(c, false);
    z.push(new Uint8Array(0), true);
  } catch (e) {
    const m = (e as Error).message ?? String(e);
    if (m.startsWith(`${name}: `)) throw e;
    throw new Error(`${name}: damaged: the compressed image data is invalid (${m}) after ${total} of ${expected} bytes`);
  }
  if (total < expected) throw new Error(`${name}: truncated: the image data ends after ${total} of the ${expected} bytes the image needs`);
}

export function readPng(bytes: Uint8Array, name = 'image.png', options: ImageReadOptions = {}): Image2D {
  const walk = walkChunks(bytes, name, options);
  const h = walk.header;
  checkInflatedSize(walk.idat, rawSize(h), name);
  let png;
  try {
    png = decode(bytes);
  } catch (e) {
    throw new Error(`${name}: damaged: ${(e as Error).message ?? String(e)}`);
  }
  const { width, height } = h;
  const n = width * height;
  const warnings: string[] = [];
  const src = png.data;
  if (h.colorType === 3) {
    const pal = walk.palette!;
    const colours = pal.length / 3;
    const index = h.depth === 8 ? (src as Uint8Array) : unpack(src as Uint8Array, width, height, h.depth);
    let grey = true;
    for (let i = 0; i < colours; i++) grey &&= pal[3 * i] === pal[3 * i + 1] && pal[3 * i] === pal[3 * i + 2];
    const ch = grey ? 1 : 3;
    const out = new Uint8Array(n * ch);
    for (let p = 0; p < n; p++) {
      const k = index[p];
      if (k >= colours) throw new Error(`${name}: damaged: pixel ${p % width},${Math.floor(p / width)} uses palette entry ${k} of ${colours}`);
      for (let c = 0; c < ch; c++) out[p * ch + c] = pal[3 * k + c];
    }
    if (walk.transparency) warnings.push(`${name}: the palette's transparency (tRNS) was ignored`);
    return { width, height, channels: ch, bitDepth: 8, data: out, warnings };
  }
  if (h.depth < 8) {
    const scale = 255 / ((1 << h.depth) - 1);
    const v = unpack(src as Uint8Array, width, height, h.depth);
    for (let i = 0; i < n; i++) v[i] *= scale;
    return { width, height, channels: 1, bitDepth: 8, data: v, warnings };
  }
  const bitDepth = h.depth as 8 | 16;
  const inCh = COLOR_TYPES[h.colorType].channels;
  if (walk.transparency) warnings.push(`${name}: the transparent colour (tRNS) was ignored`);
  if (inCh === 1 || inCh === 3) return { width, height, channels: inCh, bitDepth, data: src as Uint8Array | Uint16Array, warnings };
  // an alpha channel: dropped (said when some pixel is not opaque)
  const ch = inCh === 2 ? 1 : 3;
  const out = bitDepth === 16 ? new Uint16Array(n * ch) : new Uint8Array(n * ch);
  const opaque = bitDepth === 16 ? 0xffff : 0xff;
  let seeThrough = 0;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < ch; c++) out[p * ch + c] = src[p * inCh + c];
    if (src[p * inCh + ch] !== opaque) seeThrough++;
  }
  if (seeThrough) warnings.push(`${name}: the alpha channel was dropped (${seeThrough} of ${n} pixels were not opaque)`);
  return { width, height, channels: ch, bitDepth, data: out, warnings };
}

/** 1/2/4-bit samples, packed most significant first in rows of whole bytes, one value per byte. */
function unpack(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const stride = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      out[y * width + x] = (packed[y * stride + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

export interface PngImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
  channels: 1 | 2 | 3 | 4;
  /** 8 (Uint8Array, or any array of 0..255) or 16 (Uint16Array) */
  data: Uint8Array | Uint16Array;
}

/** A PNG file of the image (8-bit for Uint8Array data, 16-bit for Uint16Array). */
export function writePng(image: PngImage): Uint8Array {
  const { width, height, channels, data } = image;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) throw new Error(`writePng: the image must be at least 1x1 pixels, got ${width}x${height}`);
  if (![1, 2, 3, 4].includes(channels)) throw new Error(`writePng: channels must be 1, 2, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) throw new Error(`writePng: ${width}x${height} pixels of ${channels} channels need ${width * height * channels} values, got ${data.length}`);
  return encode({ width, height, channels, depth: data instanceof Uint16Array ? 16 : 8, data });
}

/** A mask (0 background, anything else foreground; row-major width x height) as an 8-bit grey PNG of 0 and `foreground` (255). */
export function writePngMask(mask: ArrayLike<number>, width: number, height: number, { foreground = 255 } = {}): Uint8Array {
  if (mask.length !== width * height) throw new Error(`writePngMask: a ${width}x${height} mask needs ${width * height} values, got ${mask.length}`);
  const data = new Uint8Array(mask.length);
  for (let i = 0; i < data.length; i++) data[i] = mask[i] ? foreground : 0;
  return writePng({ width, height, channels: 1, data });
}
