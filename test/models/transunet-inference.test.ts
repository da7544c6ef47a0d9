// TransUNet's slice-wise inference (src/models/transunet/inference.ts) against SciPy and test.py:
// zoomCubic equals scipy.ndimage.zoom(order=3) up- and downsampling, zoomNearest equals zoom(order=0)
// including its rounding of halves, and segmentSlices on a 3-slice 24 x 20 HU volume with the .pth's
// tiny model gives test_single_volume's labels (window [-125, 275], zoom to 32, argmax, zoom back)
// wherever PyTorch's logit margin is not within f32 noise of a tie.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { models } from '../../src/index.js';
import type { Module } from '../../src/nn/module.js';
import { expectClose, ready } from '../helpers.js';
import { elementwiseTol } from '../tolerance.js';
import { fixtureBytes, golden, values } from './transunet-helpers.js';

beforeAll(ready);

const made: Module[] = [];
afterEach(() => {
  for (const m of made.splice(0)) for (const [, t] of m.stateDict()) t.dispose();
});

describe('TransUNet slice-wise inference', () => {
  it('zoomCubic equals scipy.ndimage.zoom(order=3), zoomNearest zoom(order=0)', () => {
    const up = models.zoomCubic(values('input.zoom.small', [9, 12], 0, 1), 9, 12, 20, 17);
    expectClose(up, golden('zoom.cubic.up').data, elementwiseTol(), 'zoom order 3, 9x12 -> 20x17');
    const down = models.zoomCubic(values('input.zoom.big', [20, 17], 0, 1), 20, 17, 9, 12);
    expectClose(down, golden('zoom.cubic.down').data, elementwiseTol(), 'zoom order 3, 20x17 -> 9x12');
    const labels = Array.from({ length: 15 }, (_, i) => i);
    expect(Array.from(models.zoomNearest(labels, 3, 5, 5, 9))).toEqual(Array.from(golden('zoom.nearest').data));
  });

  it("segmentSlices gives test.py's labels on a 3-slice volume (batches of 2)", async () => {
    const m = new models.TransUNet({ config: 'tiny', numClasses: 2 });
    made.push(m);
    await m.loadWeights(await fixtureBytes('transunet_tiny.pth'));
    const [nx, ny, nz] = [20, 24, 3];
    const progress: number[] = [];
    const { labels } = await models.segmentSlices(m, values('input.volume', [nz, ny, nx], 50, 300), [nx, ny, nz], { batchSize: 2, onProgress: (p) => progress.push(p.done) });
    expect(progress).toEqual([0, 2, 3]);
    const want = golden('segment.labels').data;
    const margins = golden('segment.margins').data;
    // a label may differ only where the nearest model pixel's margin is a near-tie
    const S = 32;
    const near = (o: number, n: number) => Math.floor((o * (S - 1)) / (n - 1) + 0.5);
    let differ = 0;
    let counted = 0;
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++) {
          const i = (z * ny + y) * nx + x;
          const margin = margins[(z * S + near(y, ny)) * S + near(x, nx)];
          if (Math.abs(margin) < 1e-3) continue;
          counted++;
          if (labels[i] !== want[i]) differ++;
        }
    expect(counted).toBeGreaterThan(0.9 * nx * ny * nz);
    expect(differ, `labels differing from test.py's where the margin exceeds 1e-3 (of ${counted})`).toBe(0);
    expect(new Set(labels).size, 'both classes predicted').toBe(2);
  });
});
