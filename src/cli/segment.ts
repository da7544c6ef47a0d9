// `medseg segment --model vnet [--config paper|monai|tiny] --weights W.safetensors IN.nii.gz -o MASK.nii.gz [--json]`:
// checks the arguments and the output (folder, extension, not the input), reads the scan and the
// weights (safetensors, or a .pth checked against the V-Net schemas), then opens the GPU, takes the
// model config and preprocessing from the file's metadata (else the --config preset's), runs the
// sliding-window segmentation with progress on stderr and writes a uint8 label NIfTI with the input's
// geometry, atomically (.nii plain, .nii.gz gzip). Without --weights it says how to train some: no
// V-Net weights are published. --json prints the per-stage times and sizes as one JSON object on stdout.
// `--model medsam` (box prompts on a slice, a slice range or a PNG / JPEG) is medsam-segment.ts; the
// command line picks the network's segmenter from SEGMENTERS by --model. `--model transunet` (slice by
// slice, a NIfTI volume or slice, or a PNG / JPEG) is transunet-segment.ts.
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtime } from '../gpu/runtime.js';
import { load } from '../node.js';
import { readNifti, writeNifti } from '../io/nifti.js';
import { VNet, VNET_PRESETS, type VNetPreset } from '../models/vnet.js';
import { segmentVolume, vnetSettingsFrom } from '../models/vnet-inference.js';
import { CliError, oneOf } from './args.js';
import { checkOutput, readInput, writeAtomic } from './files.js';
import { openGpu } from './gpu.js';
import { segmentOrStop, watchInterrupt } from './interrupt.js';
import { Progress, stderrIsTerminal } from './progress.js';
import { readWeightsInput } from './weights-input.js';
import { runMedSAMSegment } from './medsam-segment.js';
import { runTransUNetSegment } from './transunet-segment.js';

export interface SegmentArgs {
  input: string;
  output: string;
  weights?: string;
  model: 'vnet';
  config?: VNetPreset;
  json?: boolean;
  /** progress on stderr (default true): one updating line on a terminal, else a line every few seconds */
  progress?: boolean;
  log?: (line: string) => void;
  /** an interrupt: once aborted, segment stops after the current window and writes nothing */
  signal?: AbortSignal;
}

export interface SegmentReport {
  input: string;
  output: string;
  adapter: string;
  config: Record<string, unknown>;
  dims: number[];
  grid: number[];
  windows: number;
  labelCounts: Record<string, number>;
  /** set when the mask is a single label (all background or all foreground) */
  warning?: string;
  times: Record<string, number>;
}

/** The training command that works on the bundled spleen scan (scripts/demo-spleen.mjs's settings, through the CLI). */
export function noWeightsMessage(cwd = process.cwd()): string {
  const dataDir = fileURLToPath(new URL('../../data/', import.meta.url));
  const scan = `${dataDir}ct_spleen_msd09_crop.nii.gz`;
  const label = `${dataDir}ct_spleen_msd09_crop_label.nii.gz`;
  const here = (p: string) => {
    const r = relative(cwd, p);
    return r.startsWith('..') ? p : r;
  };
  const bundled = existsSync(scan) && existsSync(label);
  const img = bundled ? here(scan) : 'data/ct_spleen_msd09_crop.nii.gz';
  const lbl = bundled ? here(label) : 'data/ct_spleen_msd09_crop_label.nii.gz';
  return [
    'segment needs trained weights (--weights W.safetensors), and there are no published V-Net weights to download.',
    `Train some on the bundled spleen CT${bundled ? '' : " (in the repository's data/ folder)"}: about a minute on a CPU adapter (llvmpipe, 2 cores; without a GPU, MEDSEG_ADAPTER=llvmpipe is several times faster than SwiftShader), Dice about 0.87 of the mask against the manual label it trained on:`,
    `  npx medseg train --model vnet --config tiny --spacing 6.4,6.4,10 --patch 16,32,32 --lr 1e-2 --steps 60 --no-flip --deform-sigma 0 --seed 7 --image ${img} --label ${lbl} -o spleen-vnet.safetensors`,
    `  npx medseg segment --weights spleen-vnet.safetensors ${img} -o spleen-mask.nii.gz`,
    'Or convert a V-Net checkpoint of your own (.pth from vnet.pytorch or MONAI): npx medseg convert CKPT.pth --model vnet -o W.safetensors',
  ].join('\n');
}

/** A warning when every voxel has the same label: all background or all foreground. */
export function singleLabelWarning(counts: Record<string, number>, classes: number): string | undefined {
  const labels = Object.keys(counts);
  if (labels.length !== 1) return undefined;
  const what = labels[0] === '0' ? 'all background (label 0): nothing was found' : `all label ${labels[0]}${classes === 2 ? ' (all foreground)' : ''}`;
  return `warning: the mask is ${what}; the weights may be undertrained or not meant for this scan (train longer, or check its spacing and intensities against the weights' preprocessing)`;
}

export async function runSegment(args: SegmentArgs): Promise<SegmentReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  // ---- everything that can be checked before any work
  if (!args.weights) throw new CliError(noWeightsMessage());
  if (!args.output) throw new CliError('segment needs -o MASK.nii.gz (or MASK.nii): where to write the mask');
  oneOf('--model', args.model, ['vnet']);
  const preset = oneOf('--config', args.config ?? 'paper', Object.keys(VNET_PRESETS) as VNetPreset[]);
  checkOutput(args.output, { what: 'output mask', extensions: ['.nii.gz', '.nii'], inputs: [['input scan', args.input], ['weights file', args.weights]] });
  const gzip = args.output.toLowerCase().endsWith('.gz');
  const t0 = performance.now();
  const vol = readNifti(readInput(args.input, 'input scan'), args.input);
  const tNifti = performance.now();
  const weightsFile = await readWeightsInput(args.weights, 'weights');
  const tRead = performance.now();

  // ---- the GPU part
  await openGpu(log);
  const tInit = performance.now();
  const w = await load(weightsFile.bytes, { model: weightsFile.safetensors ? undefined : 'vnet' });
  const { config, preprocessing } = vnetSettingsFrom(w.metadata, preset);
  const net = new VNet(config);
  try {
    net.loadStateDict(w.tensors, { strict: true });
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  const tLoad = performance.now();
  if (!args.json) log(`${args.input}: ${vol.dims.join('x')} voxels at ${vol.spacing.map((s) => s.toFixed(3)).join('x')} mm; V-Net ${config.variant} (${config.baseChannels} base channels, ${config.act}, ${config.batchNormMode} BN)`);
  let bar: Progress | null = null;
  const result = await segmentOrStop(
    args.signal,
    () =>
      segmentVolume(net, vol, preprocessing, {
        signal: args.signal,
        onProgress: (p) => {
          if (args.progress === false || p.stage !== 'windows') return;
          bar ??= new Progress({ unit: 'windows', total: p.total, tty: stderrIsTerminal() });
          bar.update(p.done);
        },
      }),
    () => {
      (bar as Progress | null)?.end();
      net.dispose();
    },
  );
  const tSeg = performance.now();
  const { replaced } = writeAtomic(args.output, writeNifti(result.labels, vol, { datatype: 'uint8', description: 'medseg vnet labels', gzip }));
  const tWrite = performance.now();
  const counts: Record<string, number> = {};
  for (const v of result.labels) counts[v] = (counts[v] ?? 0) + 1;
  const warning = singleLabelWarning(counts, config.outChannels);
  const s = (ms: number) => +(ms / 1000).toFixed(3);
  const report: SegmentReport = {
    input: args.input,
    output: args.output,
    adapter: runtime().adapterName,
    config: { ...config, preprocessing },
    dims: [...vol.dims],
    grid: result.grid,
    windows: result.windows,
    labelCounts: counts,
    ...(warning ? { warning } : {}),
    times: {
      readNifti: s(tNifti - t0),
      readWeights: s(tRead - tNifti),
      init: s(tInit - tRead),
      loadWeights: s(tLoad - tInit),
      preprocess: +result.times.preprocess.toFixed(3),
      windows: +result.times.windows.toFixed(3),
      postprocess: +result.times.postprocess.toFixed(3),
      writeNifti: s(tWrite - tSeg),
      total: s(tWrite - t0),
    },
  };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`${replaced ? 'replaced' : 'wrote'} ${args.output} (${gzip ? 'gzip' : 'uncompressed'} NIfTI): labels ${JSON.stringify(counts)}, ${result.windows} windows, ${report.times.total} s`);
  if (warning) log(warning);
  return report;
}

/** The segmenters by --model: each checks its own options, so another network is one more entry. */
type SegmentOptions = { output?: string; weights?: string; model: string; config?: string; json?: boolean; progress: boolean; box?: string; slice?: string; slices?: string; window?: string; batchSize?: string };
const MEDSAM_ONLY = [['--box', 'box'], ['--slice', 'slice'], ['--slices', 'slices']] as const;
/** Refuses the options of other networks: `flags` [flag, key, for what] that `o` must not have. */
const refuse = (o: SegmentOptions, flags: readonly (readonly [string, keyof SegmentOptions, string])[]) => {
  for (const [flag, key, what] of flags) if (o[key] !== undefined) throw new CliError(`${flag} is for ${what}`);
};
const SEGMENTERS: Record<string, (input: string, o: SegmentOptions, signal: AbortSignal) => Promise<unknown>> = {
  vnet: (input, o, signal) => {
    refuse(o, [...MEDSAM_ONLY.map(([f, k]) => [f, k, '--model medsam'] as const), ['--window', 'window', '--model medsam or transunet'], ['--batch-size', 'batchSize', '--model transunet']]);
    return runSegment({ input, output: o.output ?? '', weights: o.weights, model: 'vnet', config: o.config as VNetPreset | undefined, json: o.json, progress: o.progress, signal });
  },
  medsam: (input, o, signal) => {
    refuse(o, [['--batch-size', 'batchSize', '--model transunet']]);
    return runMedSAMSegment({ input, output: o.output ?? '', weights: o.weights, config: o.config, box: o.box, slice: o.slice, slices: o.slices, window: o.window, json: o.json, progress: o.progress, signal });
  },
  transunet: (input, o, signal) => {
    refuse(o, [...MEDSAM_ONLY.map(([f, k]) => [f, k, '--model medsam'] as const), ['--config', 'config', '--model vnet or medsam (TransUNet reads its config from the weights)']]);
    return runTransUNetSegment({ input, output: o.output ?? '', weights: o.weights, window: o.window, batchSize: o.batchSize, json: o.json, progress: o.progress, signal });
  },
};

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment a scan with trained weights: V-Net (a NIfTI volume to a uint8 label NIfTI with its geometry), MedSAM with a box prompt (a NIfTI slice or slice range, or a PNG / JPEG image) or TransUNet slice by slice (a NIfTI volume or slice, or a PNG / JPEG image, to labels)')
    .argument('<input>', 'input volume (.nii or .nii.gz); for --model medsam and transunet also a .png / .jpg image')
    .option('-o, --output <file>', 'output: .nii.gz (gzip) or .nii (uncompressed) for a volume, .png for an image; an existing file is replaced atomically')
    .option('-w, --weights <file>', 'weights (.safetensors from medseg train/convert; a V-Net .pth; a MedSAM .pth such as medsam_vit_b.pth; a TransUNet .pth as train.py saves it); without it, segment says where to get some')
    .addOption(new Option('-m, --model <model>', 'network').choices(Object.keys(SEGMENTERS)).default('vnet'))
    .option('-c, --config <preset>', `V-Net: model and preprocessing preset when the weights do not record them (${Object.keys(VNET_PRESETS).join(', ')}; default paper). MedSAM: vit_b (default) or tiny`)
    .option('--box <x0,y0,x1,y1>', 'MedSAM: the box prompt in pixels of the slice or image (x the first voxel index / column, y the second / row)')
    .option('--slice <z>', 'MedSAM: the slice of the volume the box is drawn on')
    .option('--slices <a-b>', 'MedSAM: propagate over slices a..b, each box the bounding box of the neighbouring slice\'s mask')
    .option('--window <w>', 'MedSAM: intensity window: abdomen (CT 40/400, pre_CT_MR.py\'s), lung, bone, brain, mr (0.5/99.5 percentiles), or level,width in HU (default: abdomen if the scan looks like CT, else mr). TransUNet: lo,hi clipped and scaled to [0, 1] (default -125,275 HU, its training window; 0,255 for an image)')
    .option('--batch-size <n>', 'TransUNet: slices per forward pass (default 4)')
    .option('--json', 'print per-stage times and sizes as JSON on stdout')
    .option('--no-progress', 'no progress on stderr')
    .action(async (input: string, opts: SegmentOptions) => {
      let written = false;
      const unit = { medsam: 'slice', transunet: 'batch of slices' }[opts.model] ?? 'window';
      const interrupt = watchInterrupt({
        log: (l) => process.stderr.write(`${stderrIsTerminal() ? '\n' : ''}${l}\n`),
        kept: () => (written ? `${opts.output} was written` : 'nothing was written'),
        // the GPU finishes its window (slice) before the process ends: exiting under running GPU work can crash in the driver's teardown
        stopping: `stopping after the current ${unit}; nothing will be written`,
      });
      try {
        await SEGMENTERS[opts.model](input, opts, interrupt.signal);
        written = true;
      } finally {
        interrupt.dispose();
      }
    });
}
