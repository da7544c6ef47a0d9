// The full-size MedSAM (vit_b, 1024 x 1024, 93.7M parameters) once, end to end, on a real CT slice:
// data/ct_abdomen_slice512.nii.gz windowed as MedSAM's pre_CT_MR.py does (level 40, width 400, to
// uint8), the predictor's setImage (MedSAM pre-processing, the image encoder: about 970 GFLOP) and
// predict for one box and for four boxes from the cached embedding; and a full-size checkpoint in
// medsam_vit_b.pth's layout (314 keys, 375 MB, torch.save's zip format written by
// test/fixtures/make-checkpoints.ts) read from a file and loaded strictly. With SAM's initialisation (no
// checkpoint here) the masks mean nothing: the test checks shapes and geometry and prints the times,
// the adapter and the peak GPU memory. Minutes on a CPU adapter, so it runs only when asked:
//   MEDSEG_MEDSAM_FULL=1 npx vitest run --project llvmpipe test/models/medsam-full.node.test.ts
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { io, memoryStats, models, runtime } from '../../src/index.js';
import { ready } from '../helpers.js';
import { fileSource } from '../../src/weights/node-io.js';
import { manifests } from '../../src/weights/schemas/manifests.gen.js';
import { manifestTensors, writePth } from '../fixtures/make-checkpoints.js';

const run = process.env.MEDSEG_MEDSAM_FULL === '1';

describe.runIf(run)('MedSAM vit_b full size', () => {
  it('encodes a 512 x 512 CT slice once, then decodes boxes from the cached embedding', { timeout: 3_600_000 }, async () => {
    const rt = await ready();
    const vol = io.readNifti(readFileSync(new URL('../../data/ct_abdomen_slice512.nii.gz', import.meta.url)));
    const [nx, ny] = vol.dims;
    // pre_CT_MR.py: clip to [-160, 240], rescale to [0, 255] by the clipped slice's min and max, uint8
    const clipped = Float64Array.from(vol.data.subarray(0, nx * ny), (v) => Math.min(240, Math.max(-160, v)));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of clipped) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const gray = Uint8Array.from(clipped, (v) => Math.trunc(((v - lo) / Math.max(hi - lo, 1e-8)) * 255));

    let t = performance.now();
    const net = new models.MedSAM({ config: 'vit_b' });
    await runtime().sync();
    const buildS = (performance.now() - t) / 1000;
    const p = await net.predictor();
    t = performance.now();
    await p.setImage({ data: gray, width: nx, height: ny, channels: 1 });
    const encodeS = (performance.now() - t) / 1000;
    expect(p.imageEmbedding!.shape).toEqual([1, 256, 64, 64]);
    const box: models.Box = [180, 200, 300, 330];
    await (await p.predict({ box })).lowResLogitsTensor.dispose(); // pipelines compiled
    t = performance.now();
    const one = await p.predict({ box });
    const oneMs = performance.now() - t;
    t = performance.now();
    const four = await p.predict({ box: [box, [100, 100, 200, 220], [260, 150, 400, 300], [50, 300, 250, 450]] });
    const fourMs = performance.now() - t;
    expect(one.shape).toEqual({ batch: 1, masks: 1, height: ny, width: nx, lowRes: 256 });
    expect(four.shape.batch).toBe(4);
    expect(one.masks.length).toBe(nx * ny);
    const peak = memoryStats().peakBytes;
    console.log(
      `MedSAM vit_b on ${JSON.stringify(rt.adapterInfo)}: build ${buildS.toFixed(1)} s, setImage (pre-processing + encoder) ${encodeS.toFixed(1)} s, ` +
        `decoder + post-processing per box ${oneMs.toFixed(0)} ms (1 box), ${(fourMs / 4).toFixed(0)} ms (4 boxes batched), peak GPU memory ${(peak / 2 ** 20).toFixed(0)} MiB`,
    );
    one.lowResLogitsTensor.dispose();
    four.lowResLogitsTensor.dispose();
    p.reset();
    for (const [, w] of net.stateDict()) w.dispose();
  });

  it('a full-size checkpoint in the medsam_vit_b.pth layout loads strictly from a file', { timeout: 3_600_000 }, async () => {
    await ready();
    const dir = mkdtempSync(join(tmpdir(), 'medsam-full-'));
    const path = join(dir, 'medsam_vit_b.pth');
    try {
      let t = performance.now();
      const fd = openSync(path, 'w');
      let bytes = 0;
      writePth(manifestTensors(manifests.medsam_vit_b.tensors, 1, undefined, true), { prefix: 'medsam_vit_b' }, (chunk) => {
        writeSync(fd, chunk);
        bytes += chunk.length;
      });
      closeSync(fd);
      const writeS = (performance.now() - t) / 1000;
      const net = new models.MedSAM({ config: 'vit_b' });
      t = performance.now();
      const src = await fileSource(path);
      try {
        await net.loadWeights(src);
      } finally {
        await src.close();
      }
      const loadS = (performance.now() - t) / 1000;
      console.log(`medsam_vit_b-layout checkpoint: ${(bytes / 1e6).toFixed(0)} MB written in ${writeS.toFixed(1)} s, loaded strictly in ${loadS.toFixed(1)} s`);
      expect(net.stateDict().size).toBe(314);
      for (const [, w] of net.stateDict()) w.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
