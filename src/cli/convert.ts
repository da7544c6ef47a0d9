// `medseg convert <checkpoint> -o <out.safetensors> --model vnet|transunet|medsam [--dtype f32|f16]`:
// checks a .pth / .npz / .safetensors checkpoint against the model's schema and writes the
// runtime's safetensors file (temp name, renamed when complete), with a progress bar.
import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { convert } from '../weights/convert.js';
import { FileSink, fileSource } from '../weights/node-io.js';
import { modelNames, type ModelName, type Schema } from '../weights/schemas/index.js';

export interface ConvertArgs {
  checkpoint: string;
  output: string;
  model: ModelName;
  dtype: 'f32' | 'f16';
  keepNumBatchesTracked?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  /** Schemas to accept instead of the model's own (programmatic use, e.g. reduced-size tests). */
  schemas?: Schema[];
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export async function runConvert(args: ConvertArgs): Promise<void> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const t0 = Date.now();
  const src = await fileSource(args.checkpoint);
  const sink = new FileSink(args.output);
  const bar = args.progress === false ? null : new cliProgress.SingleBar({ format: 'converting {bar} {percentage}% | {done}/{total_mb} | {tensor}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, cliProgress.Presets.shades_classic);
  try {
    const { plan, bytes } = await convert(src, sink, {
      model: args.model,
      schemas: args.schemas,
      dtype: args.dtype,
      keepNumBatchesTracked: args.keepNumBatchesTracked,
      onPlan(plan) {
        log(`${src.name}: ${plan.format}, ${plan.records.length} tensors, schema '${plan.schema.id}' (${plan.schema.description})`);
        for (const n of plan.notes) log(`  ${n}`);
        bar?.start(1, 0, { done: mb(0), total_mb: '?', tensor: '' });
      },
      onProgress(p) {
        if (bar) {
          bar.setTotal(p.totalBytes);
          bar.update(p.bytes, { done: mb(p.bytes), total_mb: mb(p.totalBytes), tensor: p.name });
        }
      },
    });
    bar?.stop();
    log(`wrote ${args.output} (${mb(bytes)}, ${plan.records.length} tensors, ${args.dtype}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    bar?.stop();
    await src.close();
  }
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('check a .pth / .npz / .safetensors checkpoint against a model and write safetensors')
    .argument('<checkpoint>', 'input checkpoint (.pth, .npz or .safetensors)')
    .requiredOption('-o, --output <file>', 'output .safetensors file')
    .addOption(new Option('-m, --model <model>', 'model whose schema the checkpoint must match').choices(modelNames).makeOptionMandatory())
    .addOption(new Option('--dtype <dtype>', 'storage dtype of float tensors').choices(['f32', 'f16']).default('f32'))
    .option('--keep-num-batches-tracked', "keep BatchNorm's num_batches_tracked counters (dropped by default)")
    .option('--no-progress', 'no progress bar')
    .action(async (checkpoint: string, opts: { output: string; model: ModelName; dtype: 'f32' | 'f16'; keepNumBatchesTracked?: boolean; progress: boolean }) => {
      await runConvert({ checkpoint, output: opts.output, model: opts.model, dtype: opts.dtype, keepNumBatchesTracked: opts.keepNumBatchesTracked, progress: opts.progress && process.stderr.isTTY });
    });
}
