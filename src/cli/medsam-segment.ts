// `medseg segment --model medsam --weights W --box x0,y0,x1,y1 [--slice Z [--slices A-B]] [--window W] IN -o OUT`:
// MedSAM with a box prompt. IN is a NIfTI volume (OUT .nii / .nii.gz: a uint8 mask volume with IN's
// geometry, 1 on the segmented slices) or a PNG / JPEG image (OUT .png: 0 / 255, as
// MedSAM_Inference.py saves). A volume is windowed as pre_CT_MR.py does (medsam-inputs.ts), slice Z
// gets the box; with --slices A-B the mask propagates: each next slice (up to B, then down to A)
// gets the bounding box of its neighbour's mask as its box, and the walk stops in a direction at the
// first empty mask. Each slice runs the encoder once (setImage) and the decoder for its box.
// Everything is checked before the GPU opens; Ctrl-C stops after the current slice and writes nothing.
import { basename } from 'node:path';
import { runtime } from '../gpu/runtime.js';
import { readNifti, writeNifti, type Volume } from '../io/nifti.js';
import { writePngMask } from '../io/png.js';
import { jitteredBox } from '../models/medsam/train.js';
import type { ImageInput } from '../models/medsam/preprocess.js';
import { CliError, wholeNumber } from './args.js';
import { checkOutput, readInput, writeAtomic } from './files.js';
import { openGpu } from './gpu.js';
import { segmentOrStop } from './interrupt.js';
import { checkBoxInside, checkSlice, isImagePath, loadMedSAM, parseBox, parseSliceRange, parseWindow, readImageInput, readMedSAMWeights, sliceImage, windowVolume, type Box } from './medsam-inputs.js';
import { Progress, stderrIsTerminal } from './progress.js';

export interface MedSAMSegmentArgs {
  input: string;
  output: string;
  weights?: string;
  /** 'vit_b' (default, or what the weights' metadata records) or 'tiny' */
  config?: string;
  box?: string | readonly number[];
  /** the slice the box is drawn on (volumes; default 0 for a single slice) */
  slice?: string | number;
  /** A-B: propagate the mask over these slices (inclusive) */
  slices?: string | readonly number[];
  /** abdomen | lung | bone | brain | mr | level,width (default: abdomen for CT, mr otherwise) */
  window?: string;
  json?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  /** once aborted, segment stops after the current slice and writes nothing */
  signal?: AbortSignal;
}

export interface SliceResult {
  slice: number;
  box: Box;
  pixels: number;
  iou: number;
  encoderSeconds: number;
  decoderSeconds: number;
}

export interface MedSAMSegmentReport {
  input: string;
  output: string;
  adapter: string;
  config: string;
  window?: string;
  size: number[];
  slices: SliceResult[];
  /** why propagation ended early in a direction, if it did */
  stopped: string[];
  times: Record<string, number>;
}

export const medsamNoWeightsMessage = (): string =>
  [
    'segment --model medsam needs weights (--weights W): MedSAM\'s medsam_vit_b.pth (the checkpoint MedSAM\'s README links to), SAM\'s sam_vit_b_01ec64.pth, a MedSAM training checkpoint, or weights from medseg convert --model medsam / medseg train --model medsam.',
    'Example on the bundled demo slice: npx medseg segment --model medsam --weights medsam_vit_b.pth --box 95,255,190,350 data/medsam_demo_ct.png -o mask.png',
  ].join('\n');

export async function runMedSAMSegment(args: MedSAMSegmentArgs): Promise<MedSAMSegmentReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const say = (l: string) => !args.json && log(l);
  // ---- everything that can be checked before any work
  if (!args.weights) throw new CliError(medsamNoWeightsMessage());
  const flat = isImagePath(args.input);
  if (!args.output) throw new CliError(`segment needs -o ${flat ? 'MASK.png' : 'MASK.nii.gz (or MASK.nii)'}: where to write the mask`);
  if (args.box === undefined) throw new CliError('segment --model medsam needs --box x0,y0,x1,y1 (pixels of the slice: x the first voxel index, y the second)');
  const box = parseBox('--box', args.box);
  const range = args.slices === undefined ? null : parseSliceRange('--slices', args.slices);
  const z0 = args.slice === undefined ? undefined : wholeNumber('--slice', args.slice, 0);
  const window = args.window === undefined ? 'auto' : parseWindow('--window', args.window);
  if (flat) {
    for (const [o, v] of [['--slice', args.slice], ['--slices', args.slices], ['--window', args.window]] as const) if (v !== undefined) throw new CliError(`${o} is for volumes; ${args.input} is a 2-D image`);
  }
  if (range && z0 === undefined) throw new CliError('--slices needs --slice Z too: the slice inside the range that the box is drawn on');
  if (range && z0 !== undefined && (z0 < range[0] || z0 > range[1])) throw new CliError(`--slice ${z0} is outside --slices ${range[0]}-${range[1]}`);
  checkOutput(args.output, { what: 'output mask', extensions: flat ? ['.png'] : ['.nii.gz', '.nii'], inputs: [['input', args.input], ['weights file', args.weights]] });
  const t0 = performance.now();
  let vol: Volume | null = null;
  let image: ImageInput | null = null;
  let grey: Uint8Array | null = null;
  let chosenWindow: string | undefined;
  let z = 0;
  if (flat) {
    const r = readImageInput(args.input, 'input image');
    image = r.image;
    for (const n of r.notes) say(n);
    checkBoxInside(box, image.width, image.height);
  } else {
    vol = readNifti(readInput(args.input, 'input scan'), args.input);
    for (const w of vol.warnings ?? []) say(w);
    const [nx, ny, nz] = vol.dims;
    if (z0 === undefined && nz > 1) throw new CliError(`--slice Z is needed: ${args.input} has ${nz} slices (0-${nz - 1}); the box is drawn on slice Z`);
    z = checkSlice('--slice', z0 ?? 0, nz);
    if (range) checkSlice('--slices', range[1], nz);
    checkBoxInside(box, nx, ny);
    ({ grey, chosen: chosenWindow } = windowVolume(vol, window));
  }
  const weightsFile = await readMedSAMWeights(args.weights, args.config);
  const tRead = performance.now();

  // ---- the GPU part
  await openGpu(log);
  const net = await loadMedSAM(weightsFile);
  for (const n of weightsFile.notes) say(`${args.weights}: ${n}`);
  const tLoad = performance.now();
  const predictor = await net.predictor();
  const [W, H] = flat ? [image!.width, image!.height] : [vol!.dims[0], vol!.dims[1]];
  say(`${args.input}: ${flat ? `${W}x${H} image` : `${vol!.dims.join('x')} voxels, slice${range ? `s ${range[0]}-${range[1]} from ${z}` : ` ${z}`}; ${chosenWindow}`}; MedSAM ${weightsFile.config} (${net.config.imageSize}x${net.config.imageSize} input)`);
  const results: SliceResult[] = [];
  const masks = new Map<number, Uint8Array>();
  const stopped: string[] = [];
  const total = range ? range[1] - range[0] + 1 : 1;
  const bar = args.progress === false ? null : new Progress({ unit: 'slices', total, tty: stderrIsTerminal() });
  const runSlice = async (s: number, b: Box): Promise<Uint8Array> => {
    const te = performance.now();
    await predictor.setImage(flat ? image! : sliceImage(grey!, vol!.dims, s));
    const td = performance.now();
    const p = await predictor.predict({ box: b });
    p.lowResLogitsTensor.dispose();
    const tEnd = performance.now();
    let pixels = 0;
    for (const v of p.masks) pixels += v;
    results.push({ slice: s, box: [...b] as Box, pixels, iou: +p.iou[0].toFixed(4), encoderSeconds: +((td - te) / 1000).toFixed(3), decoderSeconds: +((tEnd - td) / 1000).toFixed(3) });
    masks.set(s, p.masks);
    bar?.update(results.length, `slice ${s}: ${pixels} px`);
    return p.masks;
  };
  await segmentOrStop(args.signal, async () => {
    const first = await runSlice(z, box);
    if (range) {
      for (const dir of [1, -1]) {
        let prev = first;
        for (let s = z + dir; s >= range[0] && s <= range[1]; s += dir) {
          if (args.signal?.aborted) break;
          const b = jitteredBox(prev, W, H, 0);
          if (!b) {
            stopped.push(`slice ${s - dir} has an empty mask: no box for slice ${s}, propagation ${dir > 0 ? 'upwards' : 'downwards'} stopped there`);
            break;
          }
          prev = await runSlice(s, b);
        }
      }
    }
  }, () => {
    bar?.end();
    predictor.reset();
    net.dispose();
  });
  const tSeg = performance.now();
  let bytes: Uint8Array;
  if (flat) bytes = writePngMask(masks.get(0)!, W, H);
  else {
    const [nx, ny, nz] = vol!.dims;
    const labels = new Uint8Array(nx * ny * nz);
    for (const [s, m] of masks) labels.set(m, s * nx * ny);
    bytes = writeNifti(labels, vol!, { datatype: 'uint8', description: `medseg medsam ${weightsFile.config} mask`, gzip: args.output.toLowerCase().endsWith('.gz') });
  }
  const { replaced } = writeAtomic(args.output, bytes);
  const tWrite = performance.now();
  const sec = (ms: number) => +(ms / 1000).toFixed(3);
  const sum = (k: 'encoderSeconds' | 'decoderSeconds') => +results.reduce((a, r) => a + r[k], 0).toFixed(3);
  const report: MedSAMSegmentReport = {
    input: args.input,
    output: args.output,
    adapter: runtime().adapterName,
    config: weightsFile.config,
    ...(chosenWindow ? { window: chosenWindow } : {}),
    size: flat ? [W, H] : [...vol!.dims],
    slices: results.sort((a, b) => a.slice - b.slice),
    stopped,
    times: { read: sec(tRead - t0), loadWeights: sec(tLoad - tRead), encoder: sum('encoderSeconds'), decoder: sum('decoderSeconds'), segment: sec(tSeg - tLoad), write: sec(tWrite - tSeg), total: sec(tWrite - t0) },
  };
  for (const s of stopped) say(s);
  const px = results.reduce((a, r) => a + r.pixels, 0);
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} (${flat ? 'PNG, 0/255' : 'uint8 NIfTI with the input\'s geometry'}): ${px} mask pixels on ${results.length} slice${results.length === 1 ? '' : 's'}${flat ? '' : ` (${results.filter((r) => r.pixels).map((r) => r.slice).join(', ') || 'none'})`}; encoder ${report.times.encoder} s, decoder ${report.times.decoder} s, ${report.times.total} s in all (${basename(args.weights)})`);
  if (px === 0) log('warning: the mask is empty: nothing was found in the box (are the weights trained, and is the box on the structure?)');
  return report;
}
