// `medseg segment --model vnet [--config paper|monai|tiny] --weights W.safetensors IN.nii.gz -o MASK.nii.gz [--json]`:
// loads the weights (safetensors, or a .pth / .npz checked against the V-Net schemas), takes the
// model config and preprocessing from the file's metadata (else the --config preset's), runs the
// sliding-window segmentation and writes a uint8 label NIfTI with the input's geometry. A progress
// bar on a terminal; --json prints the per-stage times and sizes as one JSON object on stdout.
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { readFile, writeFile } from 'node:fs/promises';
import { init, runtime } from '../gpu/runtime.js';
import { load } from '../node.js';
import { readNifti, writeNifti } from '../io/nifti.js';
import { VNet, VNET_PRESETS, type VNetPreset } from '../models/vnet.js';
import { segmentVolume, vnetSettingsFrom, type SegmentProgress } from '../models/vnet-inference.js';

export interface SegmentArgs {
  input: string;
  output: string;
  weights: string;
  model: 'vnet';
  config?: VNetPreset;
  json?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
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
  times: Record<string, number>;
}

export async function runSegment(args: SegmentArgs): Promise<SegmentReport> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const t0 = performance.now();
  await init();
  const tInit = performance.now();
  const w = await load(args.weights, { model: /\.safetensors$/i.test(args.weights) ? undefined : 'vnet' });
  const { config, preprocessing } = vnetSettingsFrom(w.metadata, args.config ?? 'paper');
  const net = new VNet(config);
  try {
    net.loadStateDict(w.tensors, { strict: true });
  } finally {
    for (const t of w.tensors.values()) t.dispose();
  }
  const tLoad = performance.now();
  const vol = readNifti(await readFile(args.input), args.input);
  const tRead = performance.now();
  if (!args.json) log(`${args.input}: ${vol.dims.join('x')} voxels at ${vol.spacing.map((s) => s.toFixed(3)).join('x')} mm; V-Net ${config.variant} (${config.baseChannels} base channels, ${config.act}, ${config.batchNormMode} BN) on ${runtime().adapterName}`);
  const bar = args.progress ? new cliProgress.SingleBar({ format: '{stage} {bar} {value}/{total}', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  let started = false;
  const onProgress = (p: SegmentProgress) => {
    if (!bar) return;
    if (!started) {
      bar.start(p.total, p.done, { stage: p.stage });
      started = true;
    }
    bar.setTotal(p.total);
    bar.update(p.done, { stage: p.stage.padEnd(11) });
  };
  let result;
  try {
    result = await segmentVolume(net, vol, preprocessing, { onProgress });
  } finally {
    bar?.stop();
    for (const t of net.stateDict().values()) t.dispose();
  }
  const tSeg = performance.now();
  await writeFile(args.output, writeNifti(result.labels, vol, { datatype: 'uint8', description: 'medseg vnet labels' }));
  const tWrite = performance.now();
  const counts: Record<string, number> = {};
  for (const v of result.labels) counts[v] = (counts[v] ?? 0) + 1;
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
    times: {
      init: s(tInit - t0),
      loadWeights: s(tLoad - tInit),
      readNifti: s(tRead - tLoad),
      preprocess: +result.times.preprocess.toFixed(3),
      windows: +result.times.windows.toFixed(3),
      postprocess: +result.times.postprocess.toFixed(3),
      writeNifti: s(tWrite - tSeg),
      total: s(tWrite - t0),
    },
  };
  if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else log(`wrote ${args.output}: labels ${JSON.stringify(counts)}, ${result.windows} windows, ${report.times.total} s`);
  return report;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment a NIfTI volume with a trained model and write a uint8 label NIfTI with its geometry')
    .argument('<input>', 'input volume (.nii or .nii.gz)')
    .requiredOption('-o, --output <file>', 'output label volume (.nii.gz)')
    .requiredOption('-w, --weights <file>', 'weights (.safetensors from medseg train/convert, or a .pth)')
    .addOption(new Option('-m, --model <model>', 'network').choices(['vnet']).default('vnet'))
    .addOption(new Option('-c, --config <preset>', 'model and preprocessing preset when the weights do not record them').choices(Object.keys(VNET_PRESETS)).default('paper'))
    .option('--json', 'print per-stage times and sizes as JSON on stdout')
    .option('--no-progress', 'no progress bar')
    .action(async (input: string, opts: { output: string; weights: string; model: 'vnet'; config: VNetPreset; json?: boolean; progress: boolean }) => {
      await runSegment({ input, output: opts.output, weights: opts.weights, model: opts.model, config: opts.config, json: opts.json, progress: opts.progress && process.stderr.isTTY });
    });
}
