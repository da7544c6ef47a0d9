// Property test of the 2-D image readers (fast-check, the mutations of test/weights/mutate.ts):
// valid PNGs (grey, RGB 16-bit, palette at 2 bits, RGBA, Adam7, IDAT over several chunks) and a
// JPEG (Pillow's) are truncated, bit-flipped, overwritten with huge or negative numbers, spliced; every case
// must end in an image consistent with its size or an Error naming the file, within a time and
// memory bound. Then the cases a fuzzer would take long to find: decompression bombs, a header
// claiming a huge image over little data, a CRC flip, a cut stream. MEDSEG_FUZZ_RUNS=N runs N per property.
import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { io } from '../../src/index.js';
import { RGB_JPEG } from '../fixtures/jpegs.js';
import { checkOutcome, fuzzRuns } from '../weights/mutate.js';
import { buildPng, chunk, samplesFor } from './build-png.js';

const pngs = [
  buildPng({ width: 9, height: 7, colorType: 0, depth: 8, samples: samplesFor(63, 8), interlace: true }),
  buildPng({ width: 6, height: 5, colorType: 2, depth: 16, samples: samplesFor(90, 16), idatChunk: 40 }),
  buildPng({ width: 11, height: 4, colorType: 3, depth: 2, samples: samplesFor(44, 2), palette: [[0, 0, 0], [9, 9, 9], [200, 1, 2], [3, 4, 250]], trns: Uint8Array.of(0) }),
  buildPng({ width: 5, height: 5, colorType: 6, depth: 8, samples: samplesFor(100, 8), extra: [{ type: 'tEXt', data: new TextEncoder().encode('k\0v') }] }),
];
/** Where each chunk's length, type, data start and CRC lie, and IHDR's fields. */
function pngHot(b: Uint8Array): number[] {
  const hot = [0, 8, 12, 16, 20, 24, 25, 26, 27, 28];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 8; at + 8 <= b.length; at += 12 + v.getUint32(at)) hot.push(at, at + 4, at + 8, at + 8 + v.getUint32(at));
  return hot;
}
const jpeg = Uint8Array.from(atob(RGB_JPEG.base64), (c) => c.charCodeAt(0));
/** JPEG marker positions (FF xx) and the two bytes after each: the segment lengths. */
const jpegHot = [...jpeg.keys()].filter((i) => jpeg[i] === 0xff && jpeg[i + 1] !== 0 && jpeg[i + 1] !== 0xff).flatMap((i) => [i, i + 1, i + 2, i + 3, i + 5, i + 7]);

describe('readImage property test', () => {
  const name = 'fuzz.img';
  // a lower pixel limit than the default: a mutated size may be a valid claim the file's length allows,
  // and decoding that many pixels legitimately takes longer and more memory than the property grants
  const parse = (b: Uint8Array) => {
    const img = io.readImage(b, name, { maxPixels: 1 << 20 });
    expect(img.data.length).toBe(img.width * img.height * img.channels);
  };
  it('mutated PNGs give an image or a clear error', async () => {
    const o = await checkOutcome('readImage PNG', pngs.map((bytes) => ({ bytes, hot: pngHot(bytes) })), parse, { runs: fuzzRuns(1000), name });
    expect(o.errors).toBeGreaterThan(0);
    expect(o.results).toBeGreaterThan(0);
  });
  it('mutated JPEGs give an image or a clear error', async () => {
    const o = await checkOutcome('readImage JPEG', [{ bytes: jpeg, hot: jpegHot }], parse, { runs: fuzzRuns(300), name });
    expect(o.errors).toBeGreaterThan(0);
  });
});

/** A grey 8-bit PNG whose IHDR says w x h, with `raw` (filtered scanlines) as its image data. */
function pngWith(w: number, h: number, raw: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk('IHDR', ihdr), chunk('IDAT', zlibSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

describe('readPng: bombs, lies and damage', () => {
  it('a decompression bomb (16 MiB of zeros for a 4x4 image) is cut off once it passes the 20 bytes the image needs', () => {
    const f = pngWith(4, 4, new Uint8Array(16 << 20));
    expect(f.length).toBeLessThan(1 << 15);
    expect(() => io.readPng(f, 'bomb.png')).toThrow('bomb.png: damaged: the image data inflates to more than the 20 bytes the image needs');
  });
  it('an IHDR claiming 8000x8000 over a few bytes of data is refused before inflating or allocating', () => {
    expect(() => io.readPng(pngWith(8000, 8000, new Uint8Array(100)), 'lie.png')).toThrow(/^lie\.png: truncated: \d+ bytes of compressed image data cannot hold the 64008000 bytes the image needs$/);
    expect(() => io.readPng(pngWith(9000, 9000, new Uint8Array(100)), 'huge.png')).toThrow('huge.png: 9000x9000 pixels (81.0 megapixels) is more than the limit of 67108864 pixels (maxPixels)');
  });
  it('too little image data, a flipped bit (CRC), a cut file and a missing IEND are named', () => {
    expect(() => io.readPng(pngWith(4, 4, new Uint8Array(19)), 's.png')).toThrow('s.png: truncated: the image data ends after 19 of the 20 bytes the image needs');
    const good = pngs[0];
    const flipped = good.slice();
    flipped[44] ^= 4; // inside the IDAT data
    expect(() => io.readPng(flipped, 'f.png')).toThrow(/^f\.png: damaged: the CRC of chunk IDAT at byte 33 does not match its contents$/);
    expect(() => io.readPng(good.subarray(0, 50), 'c.png')).toThrow(/^c\.png: truncated: chunk IDAT at byte 33 needs \d+ bytes, the file ends 17 bytes after its start$/);
    expect(() => io.readPng(good.subarray(0, good.length - 12), 'e.png')).toThrow('e.png: truncated: the file ends at byte ' + (good.length - 12) + ' before its IEND chunk');
    expect(() => io.readPng(new Uint8Array(10), 'z.png')).toThrow('z.png: not a PNG file (no PNG signature)');
  });
});
