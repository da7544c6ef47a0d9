// `medseg segment --model transunet --weights W IN -o OUT [--window lo,hi] [--batch-size N]`: TransUNet
// slice by slice (docs/models/transunet.md section 1, test.py's test_single_volume): every axial slice
// of a NIfTI volume clipped to the CT window (default [-125, 275] HU) and scaled to [0, 1], zoomed to
// the network's input (cubic spline), the slices batched, argmax over the classes, the labels zoomed
// back (nearest) and written as a uint8 NIfTI with the input's geometry (a one-slice NIfTI works the
// same); a PNG / JPEG (8-bit grey, window [0, 255]) gives a PNG whose pixel values are the labels.
// The weights are a trained state dict (train.py's .pth, or its .safetensors from medseg convert /
// medseg train); the options (config, input size, classes, skips) are read from its shapes and
// every key checked against them (transunet-weights.ts). The ImageNet-21k .npz, or a safetensors
// converted from it, holds the encoder only and is refused.
// Everything is checked before the GPU opens; Ctrl-C stops after the current batch and writes nothing.
import { basename } from 'node:path';
import { runtime } from '../gpu/runtime.js';
import { readNifti, writeNifti, type Volume } from '../io/nifti.js';
import { writePng } from '../io/png.js';
import type { TransUNetOptions } from '../models/transunet/transunet.js';
import { segmentSlices, TRANSUNET_CT_WINDOW } from '../models/transunet/inference.js';
import { loadTransUNet, readTransUNetWeights } from './transunet-weights.js';
import { CliError, numbersOf, wholeNumber } from './args.js';
import { checkOutput, readInput, writeAtomic } from './files.js';
import { openGpu } from './gpu.js';
import { segmentOrStop } from './interrupt.js';
import { isImagePath, readImageInput } from './medsam-inputs.js';
import { Progress, stderrIsTerminal } from './progress.js';

export interface TransUNetSegmentArgs {
  input: string;
  output: string;
  weights?: string;
  /** lo,hi: the intensity window scaled to [0, 1] (default -125,275 HU for a NIfTI, 0,255 for an image) */
  window?: string | readonly [number, number];
  /** slices per forward pass (default 4) */
  batchSize?: string | number;
  json?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  /** once aborted, segment stops after the current batch of slices and writes nothing */
  signal?: AbortSignal;
}

export interface TransUNetSegmentReport {
  input: string;
  output: string;
  adapter: string;
  options: Required<Pick<TransUNetOptions, 'imgSize' | 'numClasses' | 'nSkip'>> & { config: string };
  window: [number, number];
  size: number[];
  slices: number;
  classes: string;
  labelCounts: Record<string, number>;
  warning?: string;
  times: Record<string, number>;
}

export const transunetNoWeightsMessage = (): string =>
  [
    'segment --model transunet needs trained weights (--weights W): a TransUNet state dict as train.py saves it (torch.save(model.state_dict()): epoch_<n>.pth, best_model.pth),',
    'or its .safetensors from medseg convert --model transunet or medseg train --model transunet. TransUNet\'s repository publishes no trained weights;',
    'its R50+ViT-B_16.npz (ImageNet-21k) initialises the encoder only and cannot segment.',
  ].join(' ');

/** --window lo,hi: two finite numbers with lo < hi. */
export function parseRangeWindow(option: string, value: string | readonly number[]): [number, number] {
  const v = numbersOf(typeof value === 'string' ? value.split(',') : value);
  if (v.length !== 2 || !v.every(Number.isFinite) || !(v[0] < v[1])) throw new CliError(`${option} must be lo,hi: two numbers with lo < hi, like -125,275 (HU), got '${String(value)}'`);
  return v as [number, number];
}

/** What the labels mean, as far as docs/models/transunet.md says: TransUNet's Synapse setup has 9 classes, 0 background and 1-8 organs whose names the repository does not give. */
export function transunetClasses(numClasses: number): { text: string; description: string } {
  if (numClasses === 9) {
    return {
      text: 'label 0 background, 1-8 the 8 organs of the TransUNet Synapse split (the repository does not name them; no organ names are recorded)',
      description: 'medseg transunet: 0 background, 1-8 Synapse organs (names not verified)',
    };
  }
  return { text: `labels 0-${numClasses - 1} (${numClasses} classes; what they mean depends on the training data)`, description: `medseg transunet labels 0-${numClasses - 1}` };
}

/** ITU-R 601-2 luma of interleaved RGB: (299 R + 587 G + 114 B) / 1000, the weights PIL's convert('L') documents (truncated here; PIL's fixed point rounds). */
function greyOf(data: ArrayLike<number>, channels: number): { grey: Uint8Array; converted: boolean } {
  if (channels === 1) return { grey: Uint8Array.from(data), converted: false };
  const n = data.length / channels;
  const grey = new Uint8Array(n);
  let same = true;
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [data[3 * i], data[3 * i + 1], data[3 * i + 2]];
    if (r !== g || g !== b) same = false;
    grey[i] = Math.trunc((r * 299 + g * 587 + b * 114) / 1000);
  }
  return { grey, converted: !same };
}

export async function runTransUNetSegment(args: TransUNetSegmentArgs): Promise<TransUNetSegmentReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const say = (l: string) => !args.json && log(l);
  // ---- everything that can be checked before any work
  if (!args.weights) throw new CliError(transunetNoWeightsMessage());
  const flat = isImagePath(args.input);
  if (!args.output) throw new CliError(`segment needs -o ${flat ? 'LABELS.png' : 'MASK.nii.gz (or MASK.nii)'}: where to write the labels`);
  const window = args.window === undefined ? (flat ? ([0, 255] as [number, number]) : ([...TRANSUNET_CT_WINDOW] as [number, number])) : parseRangeWindow('--window', args.window);
  const batchSize = args.batchSize === undefined ? 4 : wholeNumber('--batch-size', args.batchSize);
  checkOutput(args.output, { what: 'output labels', extensions: flat ? ['.png'] : ['.nii.gz', '.nii'], inputs: [['input', args.input], ['weights file', args.weights]] });
  const t0 = performance.now();
  let vol: Volume | null = null;
  let data: ArrayLike<number>;
  let dims: [number, number, number];
  if (flat) {
    const r = readImageInput(args.input, 'input image');
    for (const n of r.notes) say(n);
    const { grey, converted } = greyOf(r.image.data, r.image.channels);
    if (converted) say(`${args.input}: an RGB image, taken as its grey luma (299 R + 587 G + 114 B) / 1000 (TransUNet reads one channel)`);
    data = grey;
    dims = [r.image.width, r.image.height, 1];
  } else {
    vol = readNifti(readInput(args.input, 'input scan'), args.input);
    for (const w of vol.warnings ?? []) say(w);
    data = vol.data;
    dims = [vol.dims[0], vol.dims[1], vol.dims[2]];
  }
  const weightsFile = await readTransUNetWeights(args.weights);
  const { options } = weightsFile;
  const tRead = performance.now();

  // ---- the GPU part
  await openGpu(log);
  const net = await loadTransUNet(weightsFile);
  for (const n of weightsFile.notes) say(`${args.weights}: ${n}`);
  const tLoad = performance.now();
  const S = options.imgSize;
  say(`${args.input}: ${flat ? `${dims[0]}x${dims[1]} image` : `${dims.join('x')} voxels, ${dims[2]} axial slice${dims[2] === 1 ? '' : 's'}`}, window [${window.join(', ')}] scaled to [0, 1]; TransUNet ${options.config} (${S}x${S} input, ${options.numClasses} classes, ${options.nSkip} skips), ${batchSize} slice${batchSize === 1 ? '' : 's'} per batch`);
  let bar: Progress | null = null;
  const { labels } = await segmentOrStop(
    args.signal,
    () =>
      segmentSlices(net, data, dims, {
        window,
        batchSize,
        signal: args.signal,
        onProgress: (p) => {
          if (args.progress === false) return;
          bar ??= new Progress({ unit: 'slices', total: p.total, tty: stderrIsTerminal() });
          bar.update(p.done);
        },
      }),
    () => {
      (bar as Progress | null)?.end();
      net.dispose();
    },
  );
  const tSeg = performance.now();
  const classes = transunetClasses(options.numClasses);
  const bytes = flat
    ? writePng({ width: dims[0], height: dims[1], channels: 1, data: labels })
    : writeNifti(labels, vol!, { datatype: 'uint8', description: classes.description, gzip: args.output.toLowerCase().endsWith('.gz') });
  const { replaced } = writeAtomic(args.output, bytes);
  const tWrite = performance.now();
  const labelCounts: Record<string, number> = {};
  for (const v of labels) labelCounts[v] = (labelCounts[v] ?? 0) + 1;
  const only = Object.keys(labelCounts);
  const warning = only.length === 1 ? `warning: every ${flat ? 'pixel' : 'voxel'} has label ${only[0]}${only[0] === '0' ? ' (background): nothing was found' : ''}; the weights may be undertrained or not meant for this ${flat ? 'image' : 'scan'} (check --window against the weights' training window)` : undefined;
  const sec = (ms: number) => +(ms / 1000).toFixed(3);
  const report: TransUNetSegmentReport = {
    input: args.input,
    output: args.output,
    adapter: runtime().adapterName,
    options,
    window,
    size: [...dims],
    slices: dims[2],
    classes: classes.text,
    labelCounts,
    ...(warning ? { warning } : {}),
    times: { read: sec(tRead - t0), loadWeights: sec(tLoad - tRead), segment: sec(tSeg - tLoad), write: sec(tWrite - tSeg), total: sec(tWrite - t0) },
  };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} (${flat ? '8-bit grey PNG, pixel value = label' : "uint8 NIfTI with the input's geometry"}): ${classes.text}; labels ${JSON.stringify(labelCounts)}, ${dims[2]} slice${dims[2] === 1 ? '' : 's'}, ${report.times.segment} s segmenting, ${report.times.total} s in all (${basename(args.weights)})`);
  if (warning) log(warning);
  return report;
}
