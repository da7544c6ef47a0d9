// The demo viewer's geometry (demo/slices.ts) against the radiological convention written out by
// hand: for RAS+, LPS+ and a permuted (sagittally acquired) affine, which voxel axis each view
// slices and which way it runs on screen; pixel <-> voxel round trips; world positions from the
// affine; the windowed gray values of a synthetic volume pixel by pixel.
import { describe, expect, it } from 'vitest';
import { axisCodes, classColour, percentileWindow, pixelToVoxel, sliceGray, sliceRgba, viewSpecs, voxelToPixel, voxelToWorld } from '../../demo/slices.js';

const diag = (x: number, y: number, z: number) => [
  [x, 0, 0, 10],
  [0, y, 0, 20],
  [0, 0, z, 30],
  [0, 0, 0, 1],
];

describe('viewer geometry', () => {
  it('RAS+ voxels: axial slices k; the patient right (high i) on the screen left, anterior (high j) up', () => {
    const v = viewSpecs(diag(0.8, 0.8, 5));
    expect(v.axial).toMatchObject({ sliceAxis: 2, hAxis: 0, vAxis: 1, hFlip: true, vFlip: true });
    expect(v.coronal).toMatchObject({ sliceAxis: 1, hAxis: 0, vAxis: 2, hFlip: true, vFlip: true });
    // sagittal: anterior (high j) to the right, superior (high k) up
    expect(v.sagittal).toMatchObject({ sliceAxis: 0, hAxis: 1, vAxis: 2, hFlip: false, vFlip: true });
    const dims = [4, 5, 6];
    // screen pixel (0, 0) of axial slice 2 is the voxel farthest right and anterior
    expect(pixelToVoxel(v.axial, dims, 2, 0, 0)).toEqual([3, 4, 2]);
  });

  it('LPS+ voxels (DICOM order, as most CT): column i runs left to right and row j top to bottom unflipped', () => {
    const v = viewSpecs(diag(-0.7, -0.7, 2.5));
    expect(v.axial).toMatchObject({ sliceAxis: 2, hAxis: 0, vAxis: 1, hFlip: false, vFlip: false });
    expect(pixelToVoxel(v.axial, [4, 5, 6], 1, 0, 0)).toEqual([0, 0, 1]);
  });

  it('a sagittally acquired volume (i along z, j along x, k along y): the axial view slices along i', () => {
    const a = [
      [0, 1, 0, 0],
      [0, 0, 1, 0],
      [-1, 0, 0, 0],
      [0, 0, 0, 1],
    ];
    expect(axisCodes(a)).toEqual([
      { world: 2, sign: -1 },
      { world: 0, sign: 1 },
      { world: 1, sign: 1 },
    ]);
    const v = viewSpecs(a);
    expect(v.axial).toMatchObject({ sliceAxis: 0, hAxis: 1, vAxis: 2, hFlip: true, vFlip: true });
    expect(v.sagittal).toMatchObject({ sliceAxis: 1, hAxis: 2, vAxis: 0, hFlip: false, vFlip: false }); // superior is low i
  });

  it('pixel -> voxel -> pixel round trips in every view; world positions follow the affine', () => {
    const a = diag(-0.7, 0.9, 3);
    const v = viewSpecs(a);
    const dims = [7, 5, 4];
    for (const s of Object.values(v))
      for (let u = 0; u < dims[s.hAxis]; u++)
        for (let w = 0; w < dims[s.vAxis]; w++) {
          const ijk = pixelToVoxel(s, dims, 1, u, w);
          expect(ijk[s.sliceAxis]).toBe(1);
          expect(voxelToPixel(s, dims, ijk)).toEqual([u, w]);
        }
    voxelToWorld(a, [2, 3, 1]).forEach((w, r) => expect(w).toBeCloseTo([8.6, 22.7, 33][r], 10));
  });

  it('window/level: gray = (value - (level - width / 2)) * 255 / width, clamped, at each pixel of the axial slice', () => {
    const dims: [number, number, number] = [3, 2, 2];
    const data = Float32Array.from({ length: 12 }, (_, i) => i * 100 - 300); // -300 .. 800
    const v = viewSpecs(diag(1, 1, 1)).axial; // both screen axes flipped
    const g = sliceGray({ data, dims }, v, 1, 400, 100);
    for (let row = 0; row < 2; row++)
      for (let col = 0; col < 3; col++) {
        const value = data[(1 * 2 + (1 - row)) * 3 + (2 - col)];
        expect(g[row * 3 + col]).toBe(Math.round(Math.min(255, Math.max(0, ((value + 100) * 255) / 400))));
      }
  });

  it('the MR window spans the 1st to 99.5th percentile of non-zero voxels', () => {
    const data = new Float32Array(1001);
    for (let i = 1; i <= 1000; i++) data[i] = i; // the zero is background, left out
    const w = percentileWindow(data);
    expect(w.level - w.width / 2).toBe(10); // vals[floor(0.01 * 999)] = vals[9] = 10
    expect(w.level + w.width / 2).toBe(995); // vals[floor(0.995 * 999)] = vals[994] = 995
  });

  it('a multi-class overlay (TransUNet labels) draws each class id in its own colour, background untouched', () => {
    // ImageData is a DOM class; the canvas's is width, height and clamped RGBA bytes
    const g = globalThis as { ImageData?: unknown };
    const had = g.ImageData;
    g.ImageData ??= class {
      data: Uint8ClampedArray;
      constructor(
        public width: number,
        public height: number,
      ) {
        this.data = new Uint8ClampedArray(4 * width * height);
      }
    };
    try {
      const labels = [0, 1, 2, 3, 9, 13];
      const vol = { data: new Float32Array(6).fill(40), dims: [3, 2, 1] as [number, number, number] };
      const spec = viewSpecs([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).axial;
      for (const opacity of [1, 0.5]) {
        const img = sliceRgba(vol, spec, 0, 255, 127.5, [{ mask: labels, rgb: [255, 255, 255], opacity, multiClass: true }]);
        for (let v = 0; v < 2; v++)
          for (let u = 0; u < 3; u++) {
            const c = labels[voxelIndexOf(pixelToVoxel(spec, vol.dims, 0, u, v))];
            const grey = 40; // window 255 at level 127.5: gray = value
            const want = c === 0 ? [grey, grey, grey] : classColour(c).map((x) => grey + (x - grey) * opacity);
            const got = Array.from(img.data.subarray(4 * (v * 3 + u), 4 * (v * 3 + u) + 3));
            got.forEach((x, ch) => expect(Math.abs(x - want[ch]), `class ${c} channel ${ch} at opacity ${opacity}`).toBeLessThanOrEqual(0.5));
          }
      }
    } finally {
      if (!had) delete g.ImageData;
    }
    // 30 class ids, 30 different colours, none of them grey (the scan under the overlay is)
    const colours = Array.from({ length: 30 }, (_, i) => classColour(i + 1));
    expect(new Set(colours.map((c) => c.join())).size).toBe(30);
    for (const [r, g2, b] of colours) expect(Math.max(r, g2, b) - Math.min(r, g2, b)).toBeGreaterThan(40);
  });
});

const voxelIndexOf = ([i, j, k]: [number, number, number]) => (k * 2 + j) * 3 + i;
