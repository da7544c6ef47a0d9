// TransUNet (Chen et al. 2021; Beckschen/TransUNet networks/vit_seg_modeling.py VisionTransformer):
//   x (1 channel repeated to 3) -> ResNetV2 hybrid (root, block1..3) -> patch embedding on the 1/16
//   map + position table -> ViT encoder -> DecoderCup (bilinear x2, skips 1/8, 1/4, 1/2 for
//   nSkip = 3) -> segmentation head -> logits [B, numClasses, img, img].
// Configurations: 'R50-ViT-B_16' (get_r50_b16_config with train.py's overrides: 105,277,081
// parameters, the 409 keys of a train.py checkpoint at imgSize 224) and 'tiny', every code path at
// a small width (ResNet width 8 with 4 GroupNorm groups, units (1, 2, 1); ViT hidden 16, 2 heads,
// MLP 32, 2 layers; conv_more 16 wide), for tests. Module names equal TransUNet's, so stateDict()
// keys are the checkpoint's. Spec: docs/models/transunet.md.
import type { Tensor } from '../../tensor.js';
import { shapeStr } from '../../tensor.js';
import { Module } from '../../nn/module.js';
import { load, type LoadOptions, type WeightSource } from '../../weights/load.js';
import type { Schema } from '../../weights/schemas/index.js';
import { encoderSchema, npzNotLoaded } from '../../weights/schemas/transunet-npz.js';
import { Transformer } from './vit.js';
import { DecoderCup, SegmentationHead } from './decoder.js';

export type TransUNetConfigName = 'R50-ViT-B_16' | 'tiny';

export interface TransUNetConfig {
  hidden: number;
  numLayers: number;
  numHeads: number;
  mlpDim: number;
  /** embeddings and MLP dropout (attention dropouts are 0 in TransUNet) */
  dropoutRate: number;
  blockUnits: readonly [number, number, number];
  widthFactor: number;
  /** GroupNorm groups in the ResNet (32; the projection's GN is per channel regardless) */
  gnGroups: number;
  /** conv_more's width (TransUNet hard-codes 512) */
  headChannels: number;
  decoderChannels: readonly [number, number, number, number];
  skipChannels: readonly [number, number, number, number];
  /** the image size when the caller gives none */
  defaultImgSize: number;
}

const R50_VIT_B16: TransUNetConfig = {
  hidden: 768,
  numLayers: 12,
  numHeads: 12,
  mlpDim: 3072,
  dropoutRate: 0.1,
  blockUnits: [3, 4, 9],
  widthFactor: 1,
  gnGroups: 32,
  headChannels: 512,
  decoderChannels: [256, 128, 64, 16],
  skipChannels: [512, 256, 64, 16],
  defaultImgSize: 224,
};

const TINY: TransUNetConfig = {
  hidden: 16,
  numLayers: 2,
  numHeads: 2,
  mlpDim: 32,
  dropoutRate: 0.1,
  blockUnits: [1, 2, 1],
  widthFactor: 0.125,
  gnGroups: 4,
  headChannels: 16,
  decoderChannels: [16, 8, 8, 4],
  skipChannels: [64, 32, 8, 4],
  defaultImgSize: 32,
};

export const TRANSUNET_CONFIGS: Record<TransUNetConfigName, TransUNetConfig> = { 'R50-ViT-B_16': R50_VIT_B16, tiny: TINY };

export interface TransUNetOptions {
  config?: TransUNetConfigName | TransUNetConfig;
  /** square input edge, a multiple of 16 (224 for R50-ViT-B_16, 32 for tiny); the token grid is imgSize / 16 */
  imgSize?: number;
  numClasses?: number;
  /** skip connections used, 0..3 (3 in TransUNet) */
  nSkip?: number;
}

export class TransUNet extends Module {
  readonly config: TransUNetConfig;
  readonly configName: string;
  readonly imgSize: number;
  readonly numClasses: number;
  readonly nSkip: number;
  readonly transformer: Transformer;
  readonly decoder: DecoderCup;
  readonly segmentation_head: SegmentationHead;

  constructor(options: TransUNetOptions = {}) {
    super();
    const c = typeof options.config === 'object' ? { ...options.config } : TRANSUNET_CONFIGS[options.config ?? 'R50-ViT-B_16'];
    if (!c) throw new Error(`TransUNet: unknown config '${String(options.config)}' (expected ${Object.keys(TRANSUNET_CONFIGS).join(', ')})`);
    this.config = c;
    this.configName = typeof options.config === 'object' ? 'custom' : (options.config ?? 'R50-ViT-B_16');
    this.imgSize = options.imgSize ?? c.defaultImgSize;
    this.numClasses = options.numClasses ?? 9;
    this.nSkip = options.nSkip ?? 3;
    if (!Number.isInteger(this.numClasses) || this.numClasses < 1) throw new Error(`TransUNet: numClasses must be a positive integer, got ${this.numClasses}`);
    // the hybrid has three skips; TransUNet would index a fourth for n_skip 4 and fail
    if (!Number.isInteger(this.nSkip) || this.nSkip < 0 || this.nSkip > 3) throw new Error(`TransUNet: nSkip must be 0, 1, 2 or 3 (the hybrid ResNet gives three skips), got ${this.nSkip}`);
    this.transformer = this.child(
      'transformer',
      new Transformer({
        hidden: c.hidden,
        numLayers: c.numLayers,
        numHeads: c.numHeads,
        mlpDim: c.mlpDim,
        dropoutRate: c.dropoutRate,
        imgSize: this.imgSize,
        blockUnits: c.blockUnits,
        widthFactor: c.widthFactor,
        gnGroups: c.gnGroups,
      }),
    );
    this.decoder = this.child('decoder', new DecoderCup({ hidden: c.hidden, headChannels: c.headChannels, decoderChannels: c.decoderChannels, skipChannels: c.skipChannels, nSkip: this.nSkip }));
    this.segmentation_head = this.child('segmentation_head', new SegmentationHead(c.decoderChannels[3], this.numClasses));
  }

  /** Logits [B, numClasses, imgSize, imgSize] for images [B, 1 or 3, imgSize, imgSize] (one channel is repeated to three). */
  forward(x: Tensor): Tensor {
    const S = this.imgSize;
    if (x.ndim !== 4 || (x.shape[1] !== 1 && x.shape[1] !== 3) || x.shape[2] !== S || x.shape[3] !== S) {
      throw new Error(`TransUNet: input must be [B, 1 or 3, ${S}, ${S}], got ${shapeStr(x.shape)}`);
    }
    const rgb = x.shape[1] === 1 ? x.expand(x.shape[0], 3, S, S) : x;
    const { encoded, features } = this.transformer.forward(rgb);
    return this.segmentation_head.forward(this.decoder.forward(encoded, features));
  }

  /** This model's checkpoint layout (keys and shapes of its state_dict), for weights.load / weights.convert. */
  schema(): Schema {
    return {
      id: `transunet_${this.configName}_${this.imgSize}_${this.numClasses}_skip${this.nSkip}`,
      model: 'transunet',
      description: `TransUNet state_dict, config '${this.configName}', imgSize ${this.imgSize}, ${this.numClasses} classes, nSkip ${this.nSkip}`,
      tensors: new Map([...this.stateDict()].map(([k, t]) => [k, [...t.shape]])),
    };
  }

  /**
   * Loads weights. A .pth (train.py's torch.save(model.state_dict()), `module.` prefixes stripped) or
   * a converted .safetensors loads strictly (a missing num_batches_tracked reads as 0, as PyTorch's
   * BatchNorm). The ImageNet-21k .npz (R50+ViT-B_16.npz) initialises the encoder as TransUNet's
   * load_from() does (layouts converted, position table resampled for another grid); decoder.* and
   * segmentation_head.* keep their initialisation. `encoderOnly`: a file of the encoder's keys alone
   * (weights/schemas/transunet-npz.ts encoderSchema: the .npz converted on its own) fills the encoder the same way.
   */
  async loadWeights(source: WeightSource, options: Pick<LoadOptions, 'onProgress' | 'fetchInit'> & { encoderOnly?: boolean } = {}): Promise<{ format: string; notes: string[]; metadata: Record<string, string> }> {
    const { encoderOnly = false, ...loadOptions } = options;
    const schema = encoderOnly ? encoderSchema(this.schema()) : this.schema();
    const loaded = await load(source, { ...loadOptions, model: 'transunet', schemas: [schema] });
    try {
      // the schema check has passed; what may still be absent: num_batches_tracked (dropped by the
      // converter; the model keeps its counters) and, from the npz or an encoder alone, the decoder and head
      const r = this.loadStateDict(loaded.tensors, { strict: false });
      const allowed = (k: string) => k.endsWith('.num_batches_tracked') || ((encoderOnly || loaded.format === 'npz') && npzNotLoaded(k));
      const missing = r.missing.filter((k) => !allowed(k));
      if (missing.length || r.unexpected.length) {
        throw new Error(`TransUNet.loadWeights: missing keys [${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}], unexpected keys [${r.unexpected.slice(0, 5).join(', ')}]`);
      }
    } finally {
      for (const t of loaded.tensors.values()) t.dispose();
    }
    return { format: loaded.format, notes: loaded.notes, metadata: loaded.metadata };
  }
}

/**
 * safetensors metadata entries recording a TransUNet's options (what `medseg train --model transunet`
 * and the demo write; readers take the options from the shapes, which these match).
 */
export function transunetMetadata(net: Pick<TransUNet, 'configName' | 'imgSize' | 'numClasses' | 'nSkip'>): Record<string, string> {
  return { model: 'transunet', transunet_config: net.configName, img_size: String(net.imgSize), num_classes: String(net.numClasses), n_skip: String(net.nSkip) };
}
