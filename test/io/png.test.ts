// readPng against files built from the PNG specification by build-png.ts (not by the library the
// reader uses): every colour type, bit depths 1-16, all five scanline filters, Adam7, palettes,
// alpha dropped with a warning, IDAT split over chunks; writePng / writePngMask read back; RGB and
// grey JPEGs written by Pillow against libjpeg's decode (test/fixtures/make_jpegs.py); readImage
// tells the formats apart by signature; to8Bit's mapping.
import { describe, expect, it } from 'vitest';
import { io } from '../../src/index.js';
import { GREY_JPEG, RGB_JPEG } from '../fixtures/jpegs.js';
import { buildPng, samplesFor } from './build-png.js';

const W = 13; // odd widths: partial bytes at 1/2/4 bits, short Adam7 passes
const H = 11;

function expectImage(img: io.Image2D, want: { channels: number; bitDepth: number; data: ArrayLike<number> }) {
  expect([img.width, img.height, img.channels, img.bitDepth]).toEqual([W, H, want.channels, want.bitDepth]);
  expect(img.data.length).toBe(want.data.length);
  expect(Array.from(img.data)).toEqual(Array.from(want.data));
}

describe('readPng', () => {
  for (const interlace of [false, true]) {
    const tag = interlace ? ' (Adam7)' : '';
    for (const depth of [8, 16] as const) {
      it(`grey and RGB at ${depth} bits${tag}`, () => {
        for (const [colorType, ch] of [[0, 1], [2, 3]] as const) {
          const samples = samplesFor(W * H * ch, depth, colorType + depth);
          const img = io.readPng(buildPng({ width: W, height: H, colorType, depth, samples, interlace, idatChunk: 37 }), 'x.png');
          expectImage(img, { channels: ch, bitDepth: depth, data: samples });
          expect(img.data).toBeInstanceOf(depth === 16 ? Uint16Array : Uint8Array);
          expect(img.warnings).toEqual([]);
        }
      });
      it(`grey + alpha and RGBA at ${depth} bits${tag}: alpha dropped, a warning counts the pixels that were not opaque`, () => {
        for (const [colorType, ch] of [[4, 2], [6, 4]] as const) {
          const samples = samplesFor(W * H * ch, depth, 3 + colorType);
          const opaque = (1 << depth) - 1;
          for (let p = 0; p < W * H; p++) samples[p * ch + ch - 1] = p < 5 ? 7 : opaque; // 5 see-through pixels
          const img = io.readPng(buildPng({ width: W, height: H, colorType, depth, samples, interlace }), 'a.png');
          const colour = samples.filter((_, i) => i % ch !== ch - 1);
          expectImage(img, { channels: ch - 1, bitDepth: depth, data: colour });
          expect(img.warnings).toEqual([`a.png: the alpha channel was dropped (5 of ${W * H} pixels were not opaque)`]);
          for (let p = 0; p < W * H; p++) samples[p * ch + ch - 1] = opaque;
          expect(io.readPng(buildPng({ width: W, height: H, colorType, depth, samples, interlace }), 'a.png').warnings).toEqual([]);
        }
      });
    }
  }
  for (const depth of [1, 2, 4] as const) {
    it(`grey at ${depth} bit(s): samples scaled onto 0..255`, () => {
      const samples = samplesFor(W * H, depth, depth);
      const img = io.readPng(buildPng({ width: W, height: H, colorType: 0, depth, samples }), 'g.png');
      expectImage(img, { channels: 1, bitDepth: 8, data: samples.map((s) => (s * 255) / ((1 << depth) - 1)) });
    });
    it(`palette at ${depth} bit(s): RGB, or grey where every colour is grey`, () => {
      const n = 1 << depth;
      const colours: [number, number, number][] = Array.from({ length: n }, (_, i) => [i * 17, 255 - i * 9, (i * 91) % 256]);
      const index = samplesFor(W * H, depth, 5);
      const rgb = io.readPng(buildPng({ width: W, height: H, colorType: 3, depth, samples: index, palette: colours }), 'p.png');
      expectImage(rgb, { channels: 3, bitDepth: 8, data: index.flatMap((k) => colours[k]) });
      const greys: [number, number, number][] = colours.map(([r]) => [r, r, r]);
      const grey = io.readPng(buildPng({ width: W, height: H, colorType: 3, depth, samples: index, palette: greys }), 'p.png');
      expectImage(grey, { channels: 1, bitDepth: 8, data: index.map((k) => greys[k][0]) });
    });
  }
  it('palette at 8 bits with tRNS: the transparency is ignored and said; an index past the palette is an error', () => {
    const index = samplesFor(W * H, 2, 9);
    const palette: [number, number, number][] = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]];
    const img = io.readPng(buildPng({ width: W, height: H, colorType: 3, depth: 8, samples: index, palette, trns: Uint8Array.of(0, 128) }), 't.png');
    expectImage(img, { channels: 3, bitDepth: 8, data: index.flatMap((k) => palette[k]) });
    expect(img.warnings).toEqual(["t.png: the palette's transparency (tRNS) was ignored"]);
    const bad = [...index];
    bad[W + 2] = 4;
    expect(() => io.readPng(buildPng({ width: W, height: H, colorType: 3, depth: 8, samples: bad, palette }), 't.png')).toThrow('t.png: damaged: pixel 2,1 uses palette entry 4 of 4');
  });
  it('ancillary chunks are skipped', () => {
    const samples = samplesFor(W * H, 8);
    const extra = [{ type: 'tEXt', data: new TextEncoder().encode('Comment\0hello') }, { type: 'pHYs', data: new Uint8Array(9) }, { type: 'zzZz', data: new Uint8Array(3) }];
    expectImage(io.readPng(buildPng({ width: W, height: H, colorType: 0, depth: 8, samples, extra }), 'e.png'), { channels: 1, bitDepth: 8, data: samples });
  });
  it('interlaced PNGs below 8 bits are refused by name (the decoder mishandles them)', () => {
    expect(() => io.readPng(buildPng({ width: W, height: H, colorType: 0, depth: 1, samples: samplesFor(W * H, 1), interlace: true }), 'i.png')).toThrow(/i\.png: interlaced \(Adam7\) PNGs with 1-bit samples are not supported/);
  });
  it('the pixel limit is checked from IHDR, before the image data', () => {
    const f = buildPng({ width: W, height: H, colorType: 0, depth: 8, samples: samplesFor(W * H, 8) });
    expect(() => io.readPng(f, 'big.png', { maxPixels: W * H - 1 })).toThrow(`big.png: ${W}x${H} pixels (0.0 megapixels) is more than the limit of ${W * H - 1} pixels (maxPixels)`);
    expect(io.readPng(f, 'big.png', { maxPixels: W * H }).width).toBe(W);
  });
});

describe('writePng, writePngMask', () => {
  it('8- and 16-bit grey, RGB and RGBA read back unchanged', () => {
    for (const [channels, depth] of [[1, 8], [1, 16], [3, 8], [3, 16]] as const) {
      const v = samplesFor(W * H * channels, depth, channels);
      const data = depth === 16 ? Uint16Array.from(v) : Uint8Array.from(v);
      const img = io.readPng(io.writePng({ width: W, height: H, channels, data }), 'w.png');
      expectImage(img, { channels, bitDepth: depth, data: v });
    }
    expect(() => io.writePng({ width: W, height: H, channels: 1, data: new Uint8Array(3) })).toThrow(`writePng: ${W}x${H} pixels of 1 channels need ${W * H} values, got 3`);
  });
  it('a 0/1 mask becomes an 8-bit grey PNG of 0 and 255', () => {
    const mask = Uint8Array.from(samplesFor(W * H, 1, 4));
    const img = io.readPng(io.writePngMask(mask, W, H), 'm.png');
    expectImage(img, { channels: 1, bitDepth: 8, data: Array.from(mask, (m) => m * 255) });
  });
});

describe('readJpeg, readImage, to8Bit', () => {
  const bytesOf = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  it("an RGB JPEG (Pillow, 4:4:4) reads as three channels within 2 levels of libjpeg's decode; readImage picks it by signature; limits and a cut file are named", () => {
    const jpg = bytesOf(RGB_JPEG.base64);
    for (const img of [io.readJpeg(jpg, 'c.jpg'), io.readImage(jpg, 'c.jpg')]) {
      expect([img.width, img.height, img.channels, img.bitDepth]).toEqual([RGB_JPEG.width, RGB_JPEG.height, 3, 8]);
      let worst = 0;
      for (let i = 0; i < img.data.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - RGB_JPEG.libjpeg[i]));
      expect(worst).toBeLessThanOrEqual(2);
    }
    expect(() => io.readJpeg(jpg, 'c.jpg', { maxPixels: 100 })).toThrow(`c.jpg: 24x16 pixels (0.0 megapixels) is more than the limit of 100 pixels (maxPixels)`);
    expect(() => io.readJpeg(jpg.subarray(0, jpg.length >> 1), 'cut.jpg')).toThrow(/^cut\.jpg: /);
  });
  it("a greyscale JPEG (Pillow's libjpeg, one component) reads as one channel within 2 levels of libjpeg's decode", () => {
    const img = io.readImage(bytesOf(GREY_JPEG.base64), 'grey.jpg');
    expect([img.width, img.height, img.channels, img.bitDepth]).toEqual([GREY_JPEG.width, GREY_JPEG.height, 1, 8]);
    let worst = 0;
    for (let i = 0; i < img.data.length; i++) worst = Math.max(worst, Math.abs(img.data[i] - GREY_JPEG.libjpeg[i]));
    expect(worst).toBeLessThanOrEqual(2);
  });
  it('readImage refuses what is neither PNG nor JPEG, naming the file', () => {
    expect(() => io.readImage(new TextEncoder().encode('GIF89a...'), 'x.gif')).toThrow('x.gif: neither a PNG nor a JPEG file (it starts with bytes 47 49 46 38)');
  });
  it('to8Bit maps a 16-bit image from its min..max onto 0..255 and leaves 8-bit alone', () => {
    const img: io.Image2D = { width: 4, height: 1, channels: 1, bitDepth: 16, data: Uint16Array.of(1000, 1500, 2000, 3000), warnings: [] };
    const { image, note } = io.to8Bit(img);
    expect(Array.from(image.data)).toEqual([0, 63, 127, 255]); // trunc((v - 1000) * 255 / 2000)
    expect(image.bitDepth).toBe(8);
    expect(note).toBe('16-bit values 1000..3000 mapped linearly onto 0..255');
    const eight = { ...img, bitDepth: 8 as const, data: Uint8Array.of(1, 2, 3, 4) };
    expect(io.to8Bit(eight)).toEqual({ image: eight });
  });
});
