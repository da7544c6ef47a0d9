// TransUNet's checkpoint layout without building the model (no GPU): the state_dict keys and shapes
// of TransUNet(options) in stateDict() order (transunetSchema), and the reverse, the options a
// state dict was made with, read from its shapes (transunetOptionsFromShapes; the encoder's
// configuration alone, for the ImageNet-21k .npz, with transunetConfigFromShapes). What varies
// between checkpoints: the position table's tokens (imgSize / 16 squared), the head's classes, the
// skips (decoder.blocks.k.conv1 takes skip channels only for k < nSkip), and the configuration.
// The converter and the CLI check a file against these before any tensor reaches the GPU.
import type { Schema } from '../../weights/schemas/index.js';
import { TRANSUNET_CONFIGS, type TransUNetConfig, type TransUNetConfigName, type TransUNetOptions } from './transunet.js';

export type TransUNetShapeOptions = Required<Pick<TransUNetOptions, 'imgSize' | 'numClasses' | 'nSkip'>> & { config: TransUNetConfigName };

const E = 'transformer.embeddings.';
const H = `${E}hybrid_model.`;

/** The keys and shapes TransUNet(options).stateDict() has, in its order (BatchNorm's num_batches_tracked as []). */
export function transunetSchema(options: TransUNetShapeOptions): Schema {
  const c: TransUNetConfig | undefined = TRANSUNET_CONFIGS[options.config];
  if (!c) throw new Error(`TransUNet: unknown config '${options.config}' (expected ${Object.keys(TRANSUNET_CONFIGS).join(', ')})`);
  const { imgSize, numClasses, nSkip } = options;
  if (!Number.isInteger(imgSize / 16) || imgSize < 16) throw new Error(`TransUNet: imgSize must be a positive multiple of 16, got ${imgSize}`);
  const t: [string, number[]][] = [];
  const gn = (p: string, ch: number) => t.push([`${p}.weight`, [ch]], [`${p}.bias`, [ch]]);
  const bn = (p: string, ch: number) => t.push([`${p}.weight`, [ch]], [`${p}.bias`, [ch]], [`${p}.running_mean`, [ch]], [`${p}.running_var`, [ch]], [`${p}.num_batches_tracked`, []]);
  const conv = (p: string, cout: number, cin: number, k: number, bias = false) => t.push([`${p}.weight`, [cout, cin, k, k]], ...(bias ? [[`${p}.bias`, [cout]] as [string, number[]]] : []));
  const D = c.hidden;
  const grid = imgSize / 16;
  t.push([`${E}position_embeddings`, [1, grid * grid, D]]);
  // the hybrid ResNetV2 (resnet-v2.ts): root, then per unit gn1 conv1 gn2 conv2 gn3 conv3 [downsample gn_proj]
  const width = Math.trunc(64 * c.widthFactor);
  conv(`${H}root.conv`, width, 3, 7);
  gn(`${H}root.gn`, width);
  const stages: [number, number, number, number][] = [
    [width, width * 4, width, 1],
    [width * 4, width * 8, width * 2, 2],
    [width * 8, width * 16, width * 4, 2],
  ];
  stages.forEach(([cin, cout, cmid, stride], b) => {
    for (let u = 1; u <= c.blockUnits[b]; u++) {
      const U = `${H}body.block${b + 1}.unit${u}`;
      const i = u === 1 ? cin : cout;
      gn(`${U}.gn1`, cmid);
      conv(`${U}.conv1`, cmid, i, 1);
      gn(`${U}.gn2`, cmid);
      conv(`${U}.conv2`, cmid, cmid, 3);
      gn(`${U}.gn3`, cout);
      conv(`${U}.conv3`, cout, cmid, 1);
      if ((u === 1 && stride !== 1) || i !== cout) {
        conv(`${U}.downsample`, cout, i, 1);
        gn(`${U}.gn_proj`, cout);
      }
    }
  });
  conv(`${E}patch_embeddings`, D, width * 16, 1, true);
  // the ViT encoder (vit.ts): per layer attention_norm, ffn_norm, ffn.fc1/fc2, attn.query/key/value/out
  const linear = (p: string, cout: number, cin: number) => t.push([`${p}.weight`, [cout, cin]], [`${p}.bias`, [cout]]);
  for (let l = 0; l < c.numLayers; l++) {
    const L = `transformer.encoder.layer.${l}`;
    gn(`${L}.attention_norm`, D);
    gn(`${L}.ffn_norm`, D);
    linear(`${L}.ffn.fc1`, c.mlpDim, D);
    linear(`${L}.ffn.fc2`, D, c.mlpDim);
    for (const q of ['query', 'key', 'value', 'out']) linear(`${L}.attn.${q}`, D, D);
  }
  gn('transformer.encoder.encoder_norm', D);
  // DecoderCup (decoder.ts): conv_more, then blocks whose conv1 takes a skip only for k < nSkip
  conv('decoder.conv_more.0', c.headChannels, D, 3);
  bn('decoder.conv_more.1', c.headChannels);
  const ins = [c.headChannels, ...c.decoderChannels.slice(0, -1)];
  c.decoderChannels.forEach((out, k) => {
    conv(`decoder.blocks.${k}.conv1.0`, out, ins[k] + (k < nSkip ? c.skipChannels[k] : 0), 3);
    bn(`decoder.blocks.${k}.conv1.1`, out);
    conv(`decoder.blocks.${k}.conv2.0`, out, out, 3);
    bn(`decoder.blocks.${k}.conv2.1`, out);
  });
  conv('segmentation_head.0', numClasses, c.decoderChannels[3], 3, true);
  return {
    id: `transunet_${options.config}_${imgSize}_${numClasses}_skip${nSkip}`,
    model: 'transunet',
    description: `TransUNet state_dict, config '${options.config}', imgSize ${imgSize}, ${numClasses} classes, nSkip ${nSkip}`,
    tensors: new Map(t),
  };
}

/** A key's shape; a key the file lacks means it is no TransUNet state dict. */
function shapeOf(shapes: ReadonlyMap<string, readonly number[]>, k: string): readonly number[] {
  const s = shapes.get(k);
  if (!s) throw new Error(`TransUNet: the checkpoint has no '${k}' (not a TransUNet state dict?)`);
  return s;
}

/**
 * The named configuration an encoder's shapes (PyTorch keys) belong to: hidden from the position
 * table, the layer count, the ResNet's width and units. Enough for the ImageNet-21k .npz, which has
 * no decoder.
 */
export function transunetConfigFromShapes(shapes: ReadonlyMap<string, readonly number[]>): TransUNetConfigName {
  const get = (k: string) => shapeOf(shapes, k);
  const hidden = get(`${E}position_embeddings`)[2];
  let layers = 0;
  while (shapes.has(`transformer.encoder.layer.${layers}.attn.query.weight`)) layers++;
  const width = get(`${H}root.conv.weight`)[0];
  const units = [1, 2, 3].map((b) => {
    let u = 0;
    while (shapes.has(`${H}body.block${b}.unit${u + 1}.conv1.weight`)) u++;
    return u;
  });
  const name = (Object.keys(TRANSUNET_CONFIGS) as TransUNetConfigName[]).find((n) => {
    const c = TRANSUNET_CONFIGS[n];
    return c.hidden === hidden && c.numLayers === layers && Math.trunc(64 * c.widthFactor) === width && c.blockUnits.every((u, i) => u === units[i]);
  });
  if (!name) throw new Error(`TransUNet: the checkpoint (hidden ${hidden}, ${layers} layers, ResNet width ${width}, units ${units}) matches no config (${Object.keys(TRANSUNET_CONFIGS).join(', ')})`);
  return name;
}

/**
 * The TransUNet options a checkpoint's state dict was made with, read from its shapes (keys as in
 * stateDict(), `module.` already stripped): imgSize from the position table's tokens, numClasses
 * from the head, nSkip from the decoder blocks whose conv1 takes more channels than the block
 * before gives, the config by the shapes that tell the named ones apart. For a .pth or .safetensors
 * of unknown make, e.g. `medseg segment --model transunet --weights W` without further options.
 */
export function transunetOptionsFromShapes(shapes: ReadonlyMap<string, readonly number[]>): TransUNetShapeOptions {
  const get = (k: string) => shapeOf(shapes, k);
  const pos = get(`${E}position_embeddings`);
  const grid = Math.round(Math.sqrt(pos[1]));
  if (pos.length !== 3 || grid * grid !== pos[1]) throw new Error(`TransUNet: position_embeddings [${pos}] is not a square token grid`);
  const head = get('segmentation_head.0.weight');
  let nSkip = 0;
  let given = get('decoder.conv_more.0.weight')[0];
  for (let k = 0; k < 4; k++) {
    if (get(`decoder.blocks.${k}.conv1.0.weight`)[1] > given && nSkip === k) nSkip++;
    given = get(`decoder.blocks.${k}.conv2.0.weight`)[0];
  }
  const config = transunetConfigFromShapes(shapes);
  if (TRANSUNET_CONFIGS[config].decoderChannels[3] !== head[1]) throw new Error(`TransUNet: the segmentation head takes ${head[1]} channels; config '${config}' gives ${TRANSUNET_CONFIGS[config].decoderChannels[3]}`);
  return { config, imgSize: 16 * grid, numClasses: head[0], nSkip };
}
