// MedSAM's inference path against medsam_reference.py's goldens: the skimage resize (order 3,
// anti-aliasing, mode 'reflect') that MedSAM_Inference.py runs, upsampling and downsampling, compared
// with skimage's own output; the whole pre-processing (gray to RGB, resize, uint8, min-max); and the
// predictor on the tiny model: setImage once (the embedding cached on the GPU), predict with two boxes
// in original pixel coordinates (batched): low-res logits, IoU and the masks at the original size
// (sigmoid, bilinear to H x W, > 0.5) equal PyTorch's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { models } from '../../src/index.js';
import { ready } from '../helpers.js';
import { reductionTol } from '../tolerance.js';
import { chainLengths, expectGolden, fillModule, fixtureValues, golden, relErr } from './medsam-helpers.js';
import { expectClose } from '../helpers.js';
import { tensor } from '../../src/tensor.js';

beforeAll(ready);

const grayImage = (name: string, h: number, w: number): Uint8Array => Uint8Array.from(fixtureValues(name, [h, w], 127.5, 127.5), (v) => Math.floor(v));

describe('MedSAM pre-processing (skimage.transform.resize, order 3, anti-aliasing)', () => {
  for (const [name, h, w] of [['up', 17, 24], ['down', 150, 97]] as const) {
    it(`resizeCubic ${h}x${w} -> 32x32 equals skimage (${name === 'up' ? 'spline only' : 'Gaussian blur, then spline'})`, () => {
      const img = Float64Array.from(grayImage(`input.resize.${name}`, h, w));
      const got = models.resizeCubic(img, h, w, 32, 32);
      const want = golden(`resize.${name}`);
      console.log(`resize.${name}: max |err| / max |want| = ${relErr(got, want.data).toExponential(2)}`);
      // float64 on both sides; the golden is stored as float32
      expectClose(got, want.data, { rtol: 1e-6, atol: 1e-6 }, `resize.${name}`);
    });
  }

  it('medsamPreprocess: gray to three channels, resize, uint8 truncation, min-max, equal to MedSAM_Inference.py', () => {
    const S = models.MEDSAM_CONFIGS.tiny.imageSize;
    const x = models.medsamPreprocess({ data: grayImage('input.predictor.image', 75, 50), width: 50, height: 75, channels: 1 }, S);
    const want = golden('predictor.input').data;
    let differ = 0;
    for (let c = 0; c < 3; c++) for (let i = 0; i < S * S; i++) if (Math.abs(x[c * S * S + i] - want[i]) > 1e-7) differ++;
    expect(differ, 'pixels that differ from MedSAM_Inference.py (of 3 x 64 x 64)').toBe(0);
  });
});

describe('MedSAM predictor (tiny) against PyTorch', () => {
  let net: models.MedSAM;
  beforeAll(() => {
    net = new models.MedSAM({ config: 'tiny' });
    fillModule(net);
  });
  afterAll(() => {
    for (const [, t] of net.stateDict()) t.dispose();
  });

  it('setImage runs the encoder once; predict with two boxes gives PyTorch low-res logits, IoU and masks at 75 x 50', async () => {
    const p = await net.predictor();
    let encodes = 0;
    const forward = net.image_encoder.forward;
    net.image_encoder.forward = (x) => (encodes++, forward(x));
    let t = performance.now();
    await p.setImage({ data: grayImage('input.predictor.image', 75, 50), width: 50, height: 75, channels: 1 });
    const setImageMs = performance.now() - t;
    const boxes: models.Box[] = [[10, 15, 40, 60], [3, 30, 25, 70]];
    t = performance.now();
    const out = await p.predict({ box: boxes });
    const firstMs = performance.now() - t;
    t = performance.now();
    const again = await p.predict({ box: boxes[1] });
    const againMs = performance.now() - t;
    // first calls include pipeline compilation
    console.log(`tiny predictor: setImage ${setImageMs.toFixed(0)} ms, predict 2 boxes ${firstMs.toFixed(0)} ms (first call), 1 box ${againMs.toFixed(0)} ms`);
    net.image_encoder.forward = forward;
    expect(encodes, 'image encoder runs').toBe(1);
    expect(out.shape).toEqual({ batch: 2, masks: 1, height: 75, width: 50, lowRes: 32 });
    const { encoderK, decoderK } = chainLengths(net.config);
    const tol = reductionTol(encoderK + decoderK);
    await expectGolden(out.lowResLogitsTensor, 'predictor.low_res_logits', tol);
    await expectGolden(tensor(out.iou, [2, 1]), 'predictor.iou', tol);
    // masks: PyTorch's probabilities > 0.5, except where a probability is within the tolerance of 0.5
    const prob = golden('predictor.probabilities').data;
    let differ = 0;
    let ones = 0;
    for (let i = 0; i < prob.length; i++) {
      ones += out.masks[i];
      if (out.masks[i] !== (prob[i] > 0.5 ? 1 : 0) && Math.abs(prob[i] - 0.5) > tol.rtol) differ++;
    }
    expect(differ, 'mask pixels that differ from PyTorch').toBe(0);
    expect(ones, 'foreground pixels').toBeGreaterThan(0);
    // the second box alone, from the cached embedding, gives the batch's second mask
    expect(again.shape.batch).toBe(1);
    expect([...again.masks]).toEqual([...out.masks.subarray(75 * 50)]);
    out.lowResLogitsTensor.dispose();
    again.lowResLogitsTensor.dispose();
    p.reset();
  });
});
