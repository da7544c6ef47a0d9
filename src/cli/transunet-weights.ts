// TransUNet weights files for convert, segment and train, read and checked before the GPU opens:
// which TransUNet a checkpoint is for (config, imgSize, numClasses, nSkip) and its full key and
// shape check against that layout (models/transunet/schema.ts). A trained state dict (train.py's
// .pth, or a .safetensors) carries its options in its shapes, and options given on the command line
// must agree with them. The ImageNet-21k .npz (and a safetensors converted from it) holds the
// encoder only: its configuration is read from its shapes, the image size is given (default the
// configuration's, 224 for R50-ViT-B_16) and the position table is resampled to that grid as
// load_from() does; the class count and skips (default 9 and 3) only shape the decoder it lacks.
import { TRANSUNET_CONFIGS, TransUNet, type TransUNetConfigName } from '../models/transunet/transunet.js';
import { transunetConfigFromShapes, transunetOptionsFromShapes, transunetSchema, type TransUNetShapeOptions } from '../models/transunet/schema.js';
import { openCheckpoint, planConversion, type Checkpoint } from '../weights/convert.js';
import { npzNotLoaded, npzTarget, npzTargetShape } from '../weights/schemas/transunet-npz.js';
import type { Schema } from '../weights/schemas/index.js';
import { bytesSource, type ByteSource } from '../weights/source.js';
import { CliError, oneOf, wholeNumber } from './args.js';
import { readInput } from './files.js';
import { loadStrictly } from './weights-input.js';

/** Options given on the command line (undefined: read from the file, or the default). */
export interface TransUNetGiven {
  config?: string;
  imgSize?: number | string;
  numClasses?: number | string;
  nSkip?: number | string;
}

export interface TransUNetLayout {
  options: TransUNetShapeOptions;
  schema: Schema;
  /** no decoder.* or segmentation_head.* in the file (the .npz, or a safetensors made from it) */
  encoderOnly: boolean;
  notes: string[];
}

const POS = 'transformer.embeddings.position_embeddings';

/** The given options, checked one by one (--config, --img-size, --classes, --n-skip). */
function checkGiven(g: TransUNetGiven): Partial<TransUNetShapeOptions> {
  const out: Partial<TransUNetShapeOptions> = {};
  if (g.config !== undefined) out.config = oneOf('--config', g.config, Object.keys(TRANSUNET_CONFIGS) as TransUNetConfigName[]);
  if (g.imgSize !== undefined) {
    out.imgSize = wholeNumber('--img-size', g.imgSize, 16);
    if (out.imgSize % 16) throw new CliError(`--img-size must be a multiple of 16 (the token grid is img-size / 16), got ${out.imgSize}`);
  }
  if (g.numClasses !== undefined) out.numClasses = wholeNumber('--classes', g.numClasses, 1);
  if (g.nSkip !== undefined) {
    out.nSkip = wholeNumber('--n-skip', g.nSkip, 0);
    if (out.nSkip > 3) throw new CliError(`--n-skip must be 0, 1, 2 or 3 (the hybrid ResNet gives three skips), got ${out.nSkip}`);
  }
  return out;
}

/**
 * The TransUNet layout of an opened checkpoint. A state dict's options come from its shapes (a given
 * option that differs is refused); an encoder-only file's configuration from its shapes, the rest
 * given or by default.
 */
export function transunetLayout(ck: Checkpoint, given: TransUNetGiven, what: string): TransUNetLayout {
  try {
    return layoutOf(ck, checkGiven(given), what);
  } catch (e) {
    // the shape readers' own errors, named by the file
    throw e instanceof CliError ? e : new CliError(`${what}: ${(e as Error).message}`);
  }
}

function layoutOf(ck: Checkpoint, g: Partial<TransUNetShapeOptions>, what: string): TransUNetLayout {
  const notes: string[] = [];
  // PyTorch keys and shapes; an npz's mapped as load_from() maps them (the class token dropped)
  const shapes = new Map<string, readonly number[]>();
  for (const [name, rec] of ck.tensors) {
    if (ck.format !== 'npz') shapes.set(name, rec.shape);
    else {
      const t = npzTarget(name);
      const s = t && npzTargetShape(t.transform, rec.shape, undefined);
      if (t && typeof s !== 'string') shapes.set(t.key, s!);
    }
  }
  const keys = [...shapes.keys()];
  const encoderOnly = !keys.some(npzNotLoaded);
  let options: TransUNetShapeOptions;
  if (!encoderOnly) {
    options = transunetOptionsFromShapes(shapes);
    const say: Record<keyof TransUNetShapeOptions, [string, (v: number | string) => string, string]> = {
      config: ['--config', (v) => `are TransUNet '${v}' (their shapes say so)`, ''],
      imgSize: ['--img-size', (v) => `are for ${v}x${v} input (${(Number(v) / 16) ** 2} position tokens)`, ' (a trained state dict loads as it was trained; load_from() resamples the position table of the ImageNet-21k .npz only)'],
      numClasses: ['--classes', (v) => `have ${v} classes`, ' (a head for another count would start from scratch: start from the ImageNet-21k .npz instead)'],
      nSkip: ['--n-skip', (v) => `use ${v} skip connection${v === 1 ? '' : 's'}`, ' (their decoder was built for that)'],
    };
    for (const k of Object.keys(say) as (keyof TransUNetShapeOptions)[]) {
      if (g[k] !== undefined && g[k] !== options[k]) throw new CliError(`${what} ${say[k][1](options[k])}, not ${say[k][0]} ${g[k]}${say[k][2]}`);
    }
  } else {
    let config: TransUNetConfigName;
    try {
      config = transunetConfigFromShapes(shapes);
    } catch (e) {
      if (!g.config) throw e;
      config = g.config; // the schema check names what does not fit
    }
    if (g.config !== undefined && g.config !== config) throw new CliError(`${what} are a TransUNet '${config}' encoder (their shapes say so), not --config ${g.config}`);
    options = { config, imgSize: g.imgSize ?? TRANSUNET_CONFIGS[config].defaultImgSize, numClasses: g.numClasses ?? 9, nSkip: g.nSkip ?? 3 };
    const pos = shapes.get(POS);
    const grid = options.imgSize / 16;
    if (pos && pos[1] !== grid * grid) {
      const old = Math.round(Math.sqrt(pos[1]));
      notes.push(`position table resampled from its ${old}x${old} grid to ${grid}x${grid} for ${options.imgSize}x${options.imgSize} input (bilinear, corner-aligned: load_from()'s zoom order 1)`);
    }
  }
  return { options, schema: transunetSchema(options), encoderOnly, notes };
}

export interface TransUNetWeightsInput {
  path: string;
  bytes: Uint8Array;
  /** how messages name the file: 'weights', 'starting weights' */
  what: string;
  options: TransUNetShapeOptions;
  /** the ImageNet-21k .npz: loaded as load_from() does (decoder and head keep their initialisation) */
  npz: boolean;
  notes: string[];
}

const encoderOnlyMessage = (path: string, from: string) =>
  `it holds the ImageNet-21k encoder only (what load_from() reads), with no trained decoder or segmentation head, so it cannot segment; fine-tune from ${from} first (medseg train --model transunet --weights ${from === 'it' ? path : 'R50+ViT-B_16.npz'} ...), or give trained weights (train.py's .pth)`;

/**
 * Reads and checks TransUNet weights before the GPU opens, key by key against the layout their
 * shapes give. Trained weights (segment, or train's start from a state dict): a .pth or .safetensors
 * state dict. With `npz` allowed (train's start), also the ImageNet-21k .npz, whose options are the
 * given ones (or the defaults). Encoder-only state dicts are refused: no trained decoder or head.
 */
export async function readTransUNetWeights(path: string, what = 'weights', { allowNpz = false, given = {} as TransUNetGiven } = {}): Promise<TransUNetWeightsInput> {
  const bytes = readInput(path, what);
  const src = bytesSource(bytes, path);
  const drop = (m: string) => (m.startsWith(path) ? m.slice(path.length).replace(/^:? /, '') : m);
  try {
    const ck = await openCheckpoint(src);
    if (ck.format === 'npz' && !allowNpz) throw new CliError(`${what} ${path} is an .npz (TransUNet's R50+ViT-B_16.npz layout): ${encoderOnlyMessage(path, 'it')}`);
    const keys = [...ck.tensors.keys()];
    if (ck.format !== 'npz' && keys.some((k) => k.startsWith('transformer.')) && !keys.some(npzNotLoaded)) {
      throw new CliError(`${what} ${path} has TransUNet encoder keys and no decoder.* or segmentation_head.* (converted from the ImageNet-21k .npz?): ${encoderOnlyMessage(path, 'the .npz')}`);
    }
    const layout = transunetLayout(ck, given, `${what} ${path}`);
    const plan = await planConversion(src, { model: 'transunet', schemas: [layout.schema] });
    return { path, bytes, what, options: layout.options, npz: ck.format === 'npz', notes: [...layout.notes, ...plan.notes] };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${what} ${path}: ${drop((e as Error).message)}`);
  }
}

/** After the GPU opens: the model with the weights loaded (strictly; the .npz as load_from() does). */
export async function loadTransUNet(w: TransUNetWeightsInput): Promise<TransUNet> {
  return loadStrictly(new TransUNet(w.options), w);
}

/** convert --model transunet: the layout a checkpoint is checked and converted against. */
export async function transunetConvertLayout(src: ByteSource, given: TransUNetGiven, what: string): Promise<TransUNetLayout> {
  return transunetLayout(await openCheckpoint(src), given, what);
}
