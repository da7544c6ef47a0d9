// Builds PNG files for the reader's tests from the specification alone (not through fast-png):
// samples per colour type packed at any bit depth, each scanline filtered with its own filter type
// (None, Sub, Up, Average, Paeth in turn, so the reader's unfiltering is exercised), Adam7
// interlacing, PLTE / tRNS / extra chunks, zlib-compressed IDAT split into several chunks, CRCs.
import { zlibSync } from 'fflate';

export interface PngSpec {
  width: number;
  height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA */
  colorType: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  /** width * height * channels samples (palette indices for colour type 3) */
  samples: ArrayLike<number>;
  interlace?: boolean;
  palette?: [number, number, number][];
  trns?: Uint8Array;
  /** split IDAT into chunks of at most this many bytes */
  idatChunk?: number;
  /** extra ancillary chunks before IDAT */
  extra?: { type: string; data: Uint8Array }[];
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

const table = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
  return out;
}

/** Packs one row of samples at `depth` bits (16: big-endian). */
function packRow(samples: number[], depth: number): Uint8Array {
  if (depth === 16) {
    const out = new Uint8Array(samples.length * 2);
    samples.forEach((s, i) => ((out[2 * i] = s >> 8), (out[2 * i + 1] = s & 0xff)));
    return out;
  }
  if (depth === 8) return Uint8Array.from(samples);
  const out = new Uint8Array(Math.ceil((samples.length * depth) / 8));
  samples.forEach((s, i) => {
    const bit = i * depth;
    out[bit >> 3] |= s << (8 - depth - (bit & 7));
  });
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filtered scanlines of a sub-image (rows of samples), filter type = row index mod 5. */
function filterLines(rows: number[][], depth: number, channels: number): number[] {
  const bpp = Math.max(1, (depth * channels) / 8);
  const out: number[] = [];
  let prev: Uint8Array | null = null;
  rows.forEach((row, r) => {
    const line = packRow(row, depth);
    const f = r % 5;
    out.push(f);
    for (let i = 0; i < line.length; i++) {
      const a = i >= bpp ? line[i - bpp] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= bpp ? prev[i - bpp] : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f];
      out.push((line[i] - pred) & 0xff);
    }
    prev = line;
  });
  return out;
}

export function buildPng(s: PngSpec): Uint8Array {
  const ch = CHANNELS[s.colorType];
  const px = (x: number, y: number) => Array.from({ length: ch }, (_, c) => s.samples[(y * s.width + x) * ch + c]);
  const sub = (x0: number, y0: number, dx: number, dy: number): number[][] => {
    const rows: number[][] = [];
    for (let y = y0; y < s.height; y += dy) {
      const row: number[] = [];
      for (let x = x0; x < s.width; x += dx) row.push(...px(x, y));
      if (row.length) rows.push(row);
    }
    return rows;
  };
  const raw: number[] = [];
  if (!s.interlace) raw.push(...filterLines(sub(0, 0, 1, 1), s.depth, ch));
  else for (const [x, y, dx, dy] of [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]) raw.push(...filterLines(sub(x, y, dx, dy), s.depth, ch));
  const z = zlibSync(Uint8Array.from(raw));
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, s.width);
  v.setUint32(4, s.height);
  ihdr.set([s.depth, s.colorType, 0, 0, s.interlace ? 1 : 0], 8);
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  for (const e of s.extra ?? []) parts.push(chunk(e.type, e.data));
  if (s.palette) parts.push(chunk('PLTE', Uint8Array.from(s.palette.flat())));
  if (s.trns) parts.push(chunk('tRNS', s.trns));
  const step = s.idatChunk ?? z.length;
  for (let i = 0; i < z.length; i += step) parts.push(chunk('IDAT', z.subarray(i, i + step)));
  parts.push(chunk('IEND', new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** Deterministic samples in [0, 2^depth) for a test image. */
export const samplesFor = (n: number, depth: number, seed = 1): number[] => Array.from({ length: n }, (_, i) => ((i * 2654435761 + seed * 40503) >>> 7) % (1 << depth));
