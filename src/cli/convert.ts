// `medseg convert <checkpoint> -o <out.safetensors> --model vnet|transunet|medsam [--dtype f32|f16]
// [--config C --img-size N --classes N --n-skip N (TransUNet)]`:
// checks the arguments, the input (a non-empty file) and the output (folder, .safetensors, not the
// input), then checks a .pth / .npz / .safetensors checkpoint against the model's schema (TransUNet's
// as the file's shapes or the options give it: transunet-weights.ts) and writes
// the runtime's safetensors file (temp name, renamed when complete), with progress. V-Net weights
// written by medseg itself (`medseg train`, any preset) need no conversion: they are copied as they
// are (in the chosen dtype), config metadata included, after a check of their keys.
import { Command, Option } from 'commander';
import { unlinkSync } from 'node:fs';
import { convert, planTargets, type ConversionPlan } from '../weights/convert.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { FileSink, fileSource } from '../weights/node-io.js';
import { isOptionalKey, modelNames, schemasFor, type ModelName, type Schema } from '../weights/schemas/index.js';
import { CliError, oneOf } from './args.js';
import { checkInput, checkOutput } from './files.js';
import { watchInterrupt } from './interrupt.js';
import { Progress, stderrIsTerminal } from './progress.js';
import { transunetConvertLayout, type TransUNetGiven } from './transunet-weights.js';

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
  /** TransUNet's layout where the file does not give it (the .npz) or to check it (--config, --img-size, --classes, --n-skip) */
  transunet?: TransUNetGiven;
  /** the temporary file being written (removed by an interrupt) */
  onTempFile?: (path: string) => void;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** Metadata of V-Net weights that medseg wrote itself (medseg train): the config is recorded. */
const isMedsegVNet = (metadata: Record<string, string>) => metadata.model === 'vnet' && typeof metadata.vnet_config === 'string';

export async function runConvert(args: ConvertArgs): Promise<void> {
  const log = args.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  oneOf('--model', args.model, modelNames);
  oneOf('--dtype', args.dtype, ['f32', 'f16']);
  checkInput(args.checkpoint, 'checkpoint');
  const { exists } = checkOutput(args.output, { what: 'output', extensions: ['.safetensors'], inputs: [['checkpoint', args.checkpoint]] });
  const t0 = Date.now();
  const src = await fileSource(args.checkpoint);
  const sink = new FileSink(args.output);
  args.onTempFile?.(sink.tempPath);
  let bar: Progress | null = null;
  const onProgress = (p: { bytes: number; totalBytes: number; index: number; count: number }) => {
    if (args.progress === false) return;
    bar ??= new Progress({ unit: 'tensors', total: p.count, tty: stderrIsTerminal() });
    bar.update(p.index, `${mb(p.bytes)} of ${mb(p.totalBytes)}`);
  };
  try {
    let count: number;
    let bytes: number;
    const own = /\.safetensors$/i.test(args.checkpoint) ? await readSafetensors(src).catch((e: Error) => {
      throw new CliError(`checkpoint ${args.checkpoint}: not a valid safetensors file: ${e.message.replace(`${src.name}: `, '')}`);
    }) : null;
    if (args.model === 'vnet' && own && isMedsegVNet(own.metadata)) {
      // medseg's own format already: check the keys (their shapes follow the recorded config), copy
      const keys = new Set(own.tensors.map((t) => t.name).filter((k) => !isOptionalKey(k)));
      const layout = schemasFor('vnet').find((s) => {
        const want = [...s.tensors.keys()].filter((k) => !isOptionalKey(k));
        return want.length === keys.size && want.every((k) => keys.has(k));
      });
      if (!layout) throw new CliError(`${args.checkpoint}: its metadata says V-Net weights written by medseg, but its ${keys.size} keys match no V-Net layout`);
      const cfg = JSON.parse(own.metadata.vnet_config) as { variant?: string; baseChannels?: number };
      log(`${args.checkpoint}: V-Net weights written by medseg (${cfg.variant}, ${cfg.baseChannels} base channels${own.metadata.steps ? `, ${own.metadata.steps} training steps` : ''}): they need no conversion, \`medseg segment --weights ${args.checkpoint}\` reads them as they are; copying them as ${args.dtype} with their config`);
      const records = [...own.tensors].sort((a, b) => a.begin - b.begin);
      ({ bytes } = await writeSafetensors(planTargets({ records } as unknown as ConversionPlan, args.dtype), sink, { metadata: { ...own.metadata, dtype: args.dtype }, onProgress }));
      count = records.length;
    } else {
      const given = args.transunet ?? {};
      if (args.model !== 'transunet' && Object.values(given).some((v) => v !== undefined)) throw new CliError(`--config, --img-size, --classes and --n-skip are TransUNet's options (--model transunet), not ${args.model}'s`);
      const layout = args.model === 'transunet' && !args.schemas ? await transunetConvertLayout(src, given, `the weights in ${args.checkpoint}`) : null;
      const r = await convert(src, sink, {
        model: args.model,
        schemas: layout ? [layout.schema] : args.schemas,
        dtype: args.dtype,
        keepNumBatchesTracked: args.keepNumBatchesTracked,
        onPlan(plan) {
          log(`${src.name}: ${plan.format}, ${plan.records.length} tensors, schema '${plan.schema.id}' (${plan.schema.description})`);
          for (const n of [...(layout?.notes ?? []), ...plan.notes]) log(`  ${n}`);
        },
        onProgress,
      });
      bytes = r.bytes;
      count = r.plan.records.length;
    }
    (bar as Progress | null)?.end();
    log(`${exists ? 'replaced' : 'wrote'} ${args.output} (${mb(bytes)}, ${count} tensors, ${args.dtype}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    await sink.abort().catch(() => {});
    throw e;
  } finally {
    (bar as Progress | null)?.end();
    await src.close();
  }
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('check a .pth / .npz / .safetensors checkpoint against a model and write safetensors')
    .argument('<checkpoint>', 'input checkpoint (.pth, .npz or .safetensors)')
    .requiredOption('-o, --output <file>', 'output .safetensors file (an existing file is replaced atomically)')
    .addOption(new Option('-m, --model <model>', 'model whose schema the checkpoint must match').choices(modelNames).makeOptionMandatory())
    .addOption(new Option('--dtype <dtype>', 'storage dtype of float tensors').choices(['f32', 'f16']).default('f32'))
    .option('--keep-num-batches-tracked', "keep BatchNorm's num_batches_tracked counters (dropped by default)")
    .option('--no-progress', 'no progress on stderr')
    .option('--config <config>', 'TransUNet: R50-ViT-B_16 or tiny (default: from the shapes)')
    .option('--img-size <n>', "TransUNet: input size; the .npz's position table is resampled to its grid as load_from() does (default 224; a state dict's shapes give it)")
    .option('--classes <n>', "TransUNet: classes of the head (a state dict's shapes give it)")
    .option('--n-skip <n>', "TransUNet: skip connections, 0-3 (a state dict's shapes give it)")
    .action(async (checkpoint: string, opts: { output: string; model: ModelName; dtype: 'f32' | 'f16'; keepNumBatchesTracked?: boolean; progress: boolean; config?: string; imgSize?: string; classes?: string; nSkip?: string }) => {
      let temp = '';
      const interrupt = watchInterrupt({
        log: (l) => process.stderr.write(`${stderrIsTerminal() ? '\n' : ''}${l}\n`),
        kept: () => {
          if (temp) {
            try {
              unlinkSync(temp);
            } catch {
              // not created yet
            }
          }
          return 'nothing was written';
        },
      });
      try {
        const { config, imgSize, classes, nSkip, ...rest } = opts;
        await runConvert({ checkpoint, ...rest, transunet: { config, imgSize, numClasses: classes, nSkip }, onTempFile: (p) => (temp = p) });
      } finally {
        interrupt.dispose();
      }
    });
}
