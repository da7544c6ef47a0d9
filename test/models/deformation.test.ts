// The random smooth deformation: the B-spline field against properties that pin it down
// (weights summing to 1, linear control values giving the linear field, |field| bounded by the
// largest control displacement), and sampleBatch's plumbing (no deformation = the plain patch;
// deformed labels stay labels).
import { beforeAll, describe, expect, it } from 'vitest';
import { models } from '../../src/index.js';
import { ready } from '../helpers.js';

beforeAll(ready);

const { bsplineField, bsplineWeights, randomDeformation, sampleBatch, samplePatch, patchRandom } = models;

describe('B-spline deformation field', () => {
  it('weights are positive and sum to 1', () => {
    for (const t of [0, 0.13, 0.5, 0.99, 1]) {
      const w = bsplineWeights(t);
      expect(w.every((v) => v >= 0)).toBe(true);
      expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });

  it('linear control displacements give the linear field a*(u+1)+b', () => {
    const cells = 2;
    const nc = cells + 3;
    const size: [number, number, number] = [5, 7, 4];
    const control = new Float64Array(3 * nc ** 3);
    // component 0 grows along D, 1 along H, 2 along W
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < nc; i++)
        for (let j = 0; j < nc; j++)
          for (let k = 0; k < nc; k++) control[((c * nc + i) * nc + j) * nc + k] = 0.5 * [i, j, k][c] - 1;
    const f = bsplineField(size, control, cells);
    const vol = size[0] * size[1] * size[2];
    for (let z = 0; z < size[0]; z++)
      for (let y = 0; y < size[1]; y++)
        for (let x = 0; x < size[2]; x++) {
          const o = (z * size[1] + y) * size[2] + x;
          [z, y, x].forEach((v, c) => {
            const u = (v / (size[c] - 1)) * cells;
            expect(f[c * vol + o]).toBeCloseTo(0.5 * (u + 1) - 1, 5);
          });
        }
  });

  it('a random field is smooth and bounded by 3 sigma', () => {
    const size: [number, number, number] = [8, 16, 16];
    const f = randomDeformation(size, patchRandom(3), { sigma: 2, cells: 2 });
    const vol = 8 * 16 * 16;
    expect(Math.max(...f.map(Math.abs))).toBeLessThanOrEqual(6 + 1e-5);
    expect(Math.max(...f.map(Math.abs))).toBeGreaterThan(0.1);
    // neighbouring voxels along W differ by far less than the displacement range
    let maxStep = 0;
    for (let c = 0; c < 3; c++) for (let i = 0; i < vol; i++) if ((i % 16) < 15) maxStep = Math.max(maxStep, Math.abs(f[c * vol + i + 1] - f[c * vol + i]));
    expect(maxStep).toBeLessThan(1);
  });
});

describe('sampleBatch', () => {
  // a 12x20x20 case whose label is a ball and whose image is the label plus a ramp
  const size: [number, number, number] = [12, 20, 20];
  const vol = size[0] * size[1] * size[2];
  const label = new Uint8Array(vol);
  const image = new Float32Array(vol);
  for (let z = 0; z < size[0]; z++)
    for (let y = 0; y < size[1]; y++)
      for (let x = 0; x < size[2]; x++) {
        const i = (z * size[1] + y) * size[2] + x;
        label[i] = (z - 6) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 < 25 ? 1 : 0;
        image[i] = label[i] + 0.01 * x;
      }
  const fg = Uint32Array.from([...label].flatMap((v, i) => (v ? [i] : [])));
  const c = { image, label, size, foreground: fg, padValue: 0 };
  const patch: [number, number, number] = [8, 16, 16];

  it('without deformation gives samplePatch\'s patches', async () => {
    const { images, labels } = sampleBatch([c], patch, 1, patchRandom(5), { deformation: null });
    const r = patchRandom(5);
    r(); // sampleBatch's case pick
    const p = samplePatch(c, patch, r);
    expect(images.shape).toEqual([1, 1, ...patch]);
    expect(labels.shape).toEqual([1, ...patch]);
    expect(await images.read()).toEqual(p.image);
    expect(await labels.read()).toEqual(p.label);
  });

  it('deformed patches keep labels binary and the image following its label', async () => {
    const { images, labels } = sampleBatch([c], patch, 2, patchRandom(9), { deformation: { sigma: 1.5 } });
    const [im, lb] = [await images.read(), await labels.read()];
    expect(new Set(lb)).toEqual(new Set([0, 1]));
    // image = label + a small ramp, so where the warped label is 1 the trilinear image is mostly above 0.5
    let agree = 0;
    for (let i = 0; i < lb.length; i++) if ((im[i] > 0.6) === (lb[i] > 0.5)) agree++;
    expect(agree / lb.length).toBeGreaterThan(0.9);
    expect(lb.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
