// The MedSAM figures of issue 13, item 7, reproduced on this machine's adapter (MEDSEG_ADAPTER picks
// one; llvmpipe is the fast CPU adapter). Needs dist/ (node scripts/build.mjs).
//   node scripts/medsam-figures.mjs [--steps 150] [--lr 1e-3]   tiny decoder fine-tuning on the spleen slice
//   node scripts/medsam-figures.mjs --full [--boxes 5]          the full-size vit_b encoder once, then the decoder per box
//   node scripts/medsam-figures.mjs --decoder [--boxes 5]       the vit_b decoder per box alone, on a random cached embedding
// tiny: `medseg train --model medsam --config tiny --freeze-encoder --slices 13-13` on the bundled
// spleen crop (its manual label gives the boxes, jittered as MedSAM does), from random initialisation;
// the training Dice (hard Dice per step, the mean of the last 5 steps) is the one train prints. Then
// `medseg segment` with the result and slice 13's label box, and the Dice of that mask against the
// label on slice 13: the slice it trained on, so this shows the pipeline works end to end, not that
// the model generalises. --full: MedSAM vit_b with SAM's random initialisation (no published weights
// are bundled) on data/medsam_demo_ct.png: setImage (MedSAM pre-processing + the 1024 x 1024 encoder,
// about 970 GFLOP) once, timed, the peak GPU memory (memoryStats), then predict for MedSAM's box
// [95,255,190,350] --boxes times from the cached embedding, each timed. The masks mean nothing.
// --decoder: the same predict calls on a random [1, 256, 64, 64] embedding put where setImage keeps
// its own (the predictor's embedding and size fields), for a machine where the encoder takes too long.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, io, memoryStats, models, randn, runtime } from 'medseg';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const data = (f) => join(root, 'data', f);

if (process.argv.includes('--decoder')) {
  const rt = await init();
  const boxes = Number(arg('--boxes', 5));
  let t = performance.now();
  const net = new models.MedSAM({ config: 'vit_b' });
  await runtime().sync();
  console.log(`adapter: ${rt.adapterName}; MedSAM vit_b built (SAM's random initialisation) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const p = await net.predictor();
  p.embedding = randn([1, 256, 64, 64]); // where setImage keeps the encoder's output
  p.size = { width: 512, height: 512 };
  const times = [];
  for (let i = 0; i < boxes; i++) {
    t = performance.now();
    const r = await p.predict({ box: [95, 255, 190, 350] });
    times.push(performance.now() - t);
    r.lowResLogitsTensor.dispose();
  }
  const warm = times.slice(1).sort((a, b) => a - b);
  console.log(`predict per box on a cached 256x64x64 embedding (prompt encoder, decoder, 256 -> 512 upsampling, read back): ${times.map((x) => x.toFixed(0)).join(', ')} ms (the first with pipeline compilation); median after the first ${warm[warm.length >> 1]?.toFixed(0)} ms; peak GPU memory ${(memoryStats().peakBytes / 2 ** 20).toFixed(0)} MiB`);
  p.reset();
  await runtime().sync();
} else if (process.argv.includes('--full')) {
  const rt = await init();
  const boxes = Number(arg('--boxes', 5));
  const img = io.readImage(readFileSync(data('medsam_demo_ct.png')), 'medsam_demo_ct.png');
  console.log(`adapter: ${rt.adapterName}; MedSAM vit_b (SAM's random initialisation) on medsam_demo_ct.png ${img.width}x${img.height}`);
  const net = new models.MedSAM({ config: 'vit_b' });
  const p = await net.predictor();
  let t = performance.now();
  await p.setImage({ data: img.data, width: img.width, height: img.height, channels: img.channels });
  const encoder = (performance.now() - t) / 1000;
  const peak = memoryStats().peakBytes;
  console.log(`setImage (pre-processing + encoder): ${encoder.toFixed(1)} s; peak GPU memory ${(peak / 2 ** 20).toFixed(0)} MiB`);
  const times = [];
  for (let i = 0; i < boxes; i++) {
    t = performance.now();
    const r = await p.predict({ box: [95, 255, 190, 350] });
    times.push(performance.now() - t);
    r.lowResLogitsTensor.dispose();
  }
  const warm = times.slice(1);
  console.log(`predict per box from the cached embedding (prompt encoder, decoder, 256 -> 512 upsampling, read back): first ${times[0].toFixed(0)} ms (with pipeline compilation), then ${warm.map((x) => x.toFixed(0)).join(', ')} ms; median ${warm.sort((a, b) => a - b)[warm.length >> 1]?.toFixed(0)} ms`);
  console.log(JSON.stringify({ adapter: rt.adapterName, encoderSeconds: +encoder.toFixed(2), peakGpuMiB: +(peak / 2 ** 20).toFixed(1), predictMs: times.map((x) => +x.toFixed(1)) }));
  p.reset();
  await runtime().sync();
} else {
  const steps = arg('--steps', '150');
  const lr = arg('--lr', '1e-3');
  const dir = mkdtempSync(join(tmpdir(), 'medsam-figures-'));
  const medseg = (...a) => {
    const r = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...a], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`medseg ${a[0]} exited with ${r.status}`);
  };
  const w = join(dir, 'spleen-medsam-tiny.safetensors');
  const mask = join(dir, 'spleen-slice13.nii.gz');
  try {
    medseg('train', '--model', 'medsam', '--config', 'tiny', '--freeze-encoder', '--slices', '13-13', '--lr', lr, '--steps', steps, '--seed', '13', '--image', data('ct_spleen_msd09_crop.nii.gz'), '--label', data('ct_spleen_msd09_crop_label.nii.gz'), '-o', w);
    // slice 13's label box (data/README.md): x 24-143, y 28-148
    medseg('segment', '--model', 'medsam', '--weights', w, '--box', '24,28,143,148', '--slice', '13', data('ct_spleen_msd09_crop.nii.gz'), '-o', mask);
    const got = io.readNifti(readFileSync(mask));
    const lab = io.readNifti(readFileSync(data('ct_spleen_msd09_crop_label.nii.gz')));
    const [nx, ny] = lab.dims;
    let inter = 0;
    let sum = 0;
    for (let i = 13 * nx * ny; i < 14 * nx * ny; i++) {
      const a = got.data[i] > 0 ? 1 : 0;
      const b = lab.data[i] > 0 ? 1 : 0;
      inter += a * b;
      sum += a + b;
    }
    console.log(`mask Dice against the manual label on slice 13 (164 x 166, the slice it trained on): ${((2 * inter) / sum).toFixed(3)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
