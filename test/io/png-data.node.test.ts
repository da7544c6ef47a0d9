// The bundled MedSAM demo slice (data/medsam_demo_ct.png, MedSAM's assets/img_demo.png) through
// readImage, against what Pillow 9.4 reads from the same file: size, mode, the pixel sum, two
// position-weighted sums and the pixels at the corners of MedSAM's reference box [95,255,190,350].
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { io } from '../../src/index.js';

describe('data/medsam_demo_ct.png', () => {
  it("reads as Pillow reads it: 512 x 512 8-bit grey with the same pixels", () => {
    const img = io.readImage(readFileSync(new URL('../../data/medsam_demo_ct.png', import.meta.url)), 'medsam_demo_ct.png');
    expect([img.width, img.height, img.channels, img.bitDepth, img.warnings]).toEqual([512, 512, 1, 8, []]);
    let sum = 0;
    let sx = 0;
    let sy = 0;
    for (let y = 0; y < 512; y++) for (let x = 0; x < 512; x++) {
      const v = img.data[y * 512 + x];
      sum += v;
      sx += v * (x + 1);
      sy += v * (y + 1);
    }
    // numpy on Pillow's array: a.sum(), (a * (x + 1)).sum(), (a * (y + 1)).sum()
    expect([sum, sx, sy]).toEqual([13027476, 2946774607, 3819802610]);
    const at = (x: number, y: number) => img.data[y * 512 + x];
    expect([at(150, 300), at(95, 255), at(190, 350), at(256, 256)]).toEqual([150, 221, 186, 195]);
  });
});
