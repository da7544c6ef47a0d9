// The main job (`npm start`, after scripts/start.mjs has checked the system and built dist/): a short
// V-Net run on the bundled spleen CT with its manual label, through the package's own API (imported
// by name). There are no published V-Net weights to segment with, so it trains the `tiny` V-Net from
// random weights for 60 Adam steps on the scan at a coarse 6.4 x 6.4 x 10 mm grid (13 x 21 x 20
// voxels, one 16 x 32 x 32 patch), segments the same scan with the result (batch norm on the scan's
// own statistics, as vnet.pytorch does at inference), writes the mask and the weights, and prints the
// Dice of the mask against the manual label. That label is the one it trained on: the Dice shows
// that training and inference work end to end, not how well the model generalises (there is no
// held-out scan). About 1 s a step on llvmpipe with 2 cores; training stops early after --seconds.
//   node scripts/demo-spleen.mjs [--max-steps 60] [--seconds 75] [--lr 1e-2] [--spacing x,y,z] [--patch d,h,w] [-o out-dir]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, io, manualSeed, models, weights } from 'medseg';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};
const seconds = Number(arg('--seconds', 75));
const maxSteps = Number(arg('--max-steps', 60));
const lr = Number(arg('--lr', 1e-2));
const outDir = arg('-o', join(root, 'demo-out'));
const t0 = performance.now();
const elapsed = () => ((performance.now() - t0) / 1000).toFixed(1);

const rt = await init();
console.log(`adapter: ${rt.adapterName}${rt.adapterKind === 'cpu' ? ' (a CPU adapter)' : ''}`);

const data = join(root, 'data');
const imagePath = join(data, 'ct_spleen_msd09_crop.nii.gz');
const labelPath = join(data, 'ct_spleen_msd09_crop_label.nii.gz');
const image = io.readNifti(readFileSync(imagePath), imagePath);
const label = io.readNifti(readFileSync(labelPath), labelPath);
console.log(`scan: ${relative(root, imagePath)}, ${image.dims.join('x')} voxels at ${image.spacing.map((s) => s.toFixed(2)).join('x')} mm (MSD spleen CT crop, manual label)`);

// one patch holds the whole resampled crop, so every step sees the whole spleen (no flips, no deformation)
manualSeed(7);
const config = models.vnetConfig({ preset: 'tiny' });
const triple = (s) => s.split(',').map(Number);
const pre = models.checkPreprocessing({ ...models.VNET_PREPROCESSING.tiny, spacing: triple(arg('--spacing', '6.4,6.4,10')), patch: triple(arg('--patch', '16,32,32')) });
const net = new models.VNet(config);
const c = await models.prepareCase(image, label, pre);
const params = net.parameters().reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
console.log(`model: V-Net (${config.variant}, tiny preset: ${config.baseChannels} base channels, ${params.toLocaleString('en')} parameters), random init`);
console.log(`training: resampled to ${c.size.join('x')} (D x H x W) at ${pre.spacing.join('x')} mm, patch ${pre.patch.join('x')}, Adam lr ${lr}, Dice loss; up to ${maxSteps} steps or ${seconds} s`);

const trainer = new models.VNetTrainer(net, { lr });
const random = models.patchRandom(7);
const tTrain = performance.now();
let steps = 0;
let last;
while (steps < maxSteps && (performance.now() - tTrain) / 1000 < seconds) {
  const { images, labels } = models.sampleBatch([c], pre.patch, 1, random, { flip: false, deformation: null });
  last = await trainer.step(images, labels);
  images.dispose();
  labels.dispose();
  steps++;
  const rate = (performance.now() - tTrain) / 1000 / steps;
  if (steps % 5 === 0 || steps === 1 || steps === maxSteps) console.log(`  step ${String(steps).padStart(2)}  loss ${last.loss.toFixed(4)}  training Dice ${last.dice.toFixed(3)}  ${rate.toFixed(2)} s/step`);
}
if (steps < maxSteps) console.log(`  stopped after ${steps} steps: the ${seconds} s training limit (--seconds) was reached`);
trainer.optimizer.dispose();

net.setBatchNormMode(arg('--bn', 'batch'));
const seg = await models.segmentVolume(net, image, pre);
const overlap = models.labelOverlap(seg.labels, label.data);
const { predicted, reference } = overlap;
const dice = overlap.dice ?? 1;
mkdirSync(outDir, { recursive: true });
const maskPath = join(outDir, 'spleen-mask.nii.gz');
const weightsPath = join(outDir, 'vnet-tiny-demo.safetensors');
writeFileSync(maskPath, io.writeNifti(seg.labels, image, { datatype: 'uint8' }));
writeFileSync(weightsPath, await weights.save(net.stateDict(), { metadata: { ...models.vnetMetadata(net.config, pre), steps: String(steps), trained_on: 'ct_spleen_msd09_crop.nii.gz' } }));
console.log(`segmented: ${seg.windows} window(s) on a ${seg.grid.join('x')} grid in ${seg.times.total.toFixed(1)} s (batch norm on the scan's own statistics); ${predicted.toLocaleString('en')} voxels labelled spleen, ${reference.toLocaleString('en')} in the manual label`);
console.log(`Dice of the mask against the manual label: ${dice.toFixed(3)} after ${steps} steps; the model trained on this scan and label, so this checks the pipeline, not generalisation (scripts/vnet-spleen.sh: a 28-minute run at 3.2 x 3.2 x 5 mm)`);
console.log(`wrote ${relative(process.cwd(), maskPath) || maskPath} (uint8 mask on the scan's grid and affine) and ${relative(process.cwd(), weightsPath)}`);
console.log(`the same mask again: npx medseg segment --weights ${relative(process.cwd(), weightsPath)} ${relative(process.cwd(), imagePath)} -o mask.nii.gz`);
console.log(`done in ${elapsed()} s`);
net.dispose();
