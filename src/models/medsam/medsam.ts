// MedSAM (Ma et al. 2024): SAM ViT-B (segment-anything modeling/sam.py and build_sam.py) with
// MedSAM's inference path, image encoder -> image embedding once per image, prompt encoder and mask
// decoder per prompt. Configurations: 'vit_b', sam_model_registry['vit_b'] (the layout of
// medsam_vit_b.pth and sam_vit_b_01ec64.pth, 314 keys), and 'tiny', every code path of vit_b
// (windowed attention with padded windows, a global block, relative position, the neck, the two-way
// transformer of depth 2, upscaling, hypernetwork MLPs, the IoU head) at small width, depth and image
// size, for tests. Module names equal SAM's: stateDict() keys are the checkpoint's.
// SAM's pixel_mean / pixel_std are non-persistent buffers and MedSAM does not normalise with them,
// so they are not part of this model. Spec: docs/models/medsam.md.
import type { Tensor } from '../../tensor.js';
import { Module } from '../../nn/module.js';
import { load, type LoadOptions, type WeightSource } from '../../weights/load.js';
import type { Schema } from '../../weights/schemas/index.js';
import { ImageEncoderViT } from './image-encoder.js';
import { PromptEncoder, type Prompts } from './prompt-encoder.js';
import { MaskDecoder } from './mask-decoder.js';
import { TwoWayTransformer } from './transformer.js';
import { MedSAMPredictor } from './predictor.js';

export type MedSAMConfigName = 'vit_b' | 'tiny';

export interface MedSAMConfig {
  /** input image edge (1024) */
  imageSize: number;
  patchSize: number;
  encoderEmbedDim: number;
  encoderDepth: number;
  encoderNumHeads: number;
  encoderGlobalAttnIndexes: number[];
  windowSize: number;
  mlpRatio: number;
  /** the prompt / embedding width: neck output, prompt encoder and two-way transformer (256) */
  promptEmbedDim: number;
  maskInChans: number;
  decoderDepth: number;
  decoderMlpDim: number;
  decoderNumHeads: number;
  attentionDownsampleRate: number;
  numMultimaskOutputs: number;
  iouHeadDepth: number;
  iouHeadHiddenDim: number;
}

const VIT_B: MedSAMConfig = {
  imageSize: 1024,
  patchSize: 16,
  encoderEmbedDim: 768,
  encoderDepth: 12,
  encoderNumHeads: 12,
  encoderGlobalAttnIndexes: [2, 5, 8, 11],
  windowSize: 14,
  mlpRatio: 4,
  promptEmbedDim: 256,
  maskInChans: 16,
  decoderDepth: 2,
  decoderMlpDim: 2048,
  decoderNumHeads: 8,
  attentionDownsampleRate: 2,
  numMultimaskOutputs: 3,
  iouHeadDepth: 3,
  iouHeadHiddenDim: 256,
};

/**
 * 64 x 64 images, 8 x 8 patches: an 8 x 8 token grid, windows of 3 (padded to 9 x 9, so the border
 * windows hold zero tokens), block 1 of 2 global; width 32 with 2 heads; prompt width 32.
 */
const TINY: MedSAMConfig = {
  imageSize: 64,
  patchSize: 8,
  encoderEmbedDim: 32,
  encoderDepth: 2,
  encoderNumHeads: 2,
  encoderGlobalAttnIndexes: [1],
  windowSize: 3,
  mlpRatio: 4,
  promptEmbedDim: 32,
  maskInChans: 8,
  decoderDepth: 2,
  decoderMlpDim: 64,
  decoderNumHeads: 2,
  attentionDownsampleRate: 2,
  numMultimaskOutputs: 3,
  iouHeadDepth: 3,
  iouHeadHiddenDim: 32,
};

export const MEDSAM_CONFIGS: Record<MedSAMConfigName, MedSAMConfig> = { vit_b: VIT_B, tiny: TINY };

export interface MedSAMOptions {
  config?: MedSAMConfigName | MedSAMConfig;
}

export interface MedSAMOutput {
  /** low-res mask logits [B, 1 or numMultimaskOutputs, 4 * grid, 4 * grid] (256 x 256 for vit_b) */
  lowResLogits: Tensor;
  /** [B, 1 or numMultimaskOutputs] */
  iouPredictions: Tensor;
}

export class MedSAM extends Module {
  readonly config: MedSAMConfig;
  readonly image_encoder: ImageEncoderViT;
  readonly prompt_encoder: PromptEncoder;
  readonly mask_decoder: MaskDecoder;
  /** SAM's mask_threshold on logits */
  readonly maskThreshold = 0;

  constructor(options: MedSAMOptions = {}) {
    super();
    const c = typeof options.config === 'object' ? { ...options.config } : MEDSAM_CONFIGS[options.config ?? 'vit_b'];
    if (!c) throw new Error(`MedSAM: unknown config '${String(options.config)}' (expected ${Object.keys(MEDSAM_CONFIGS).join(', ')})`);
    this.config = c;
    const grid = c.imageSize / c.patchSize;
    this.image_encoder = this.child(
      'image_encoder',
      new ImageEncoderViT({
        imgSize: c.imageSize,
        patchSize: c.patchSize,
        inChans: 3,
        embedDim: c.encoderEmbedDim,
        depth: c.encoderDepth,
        numHeads: c.encoderNumHeads,
        mlpRatio: c.mlpRatio,
        outChans: c.promptEmbedDim,
        windowSize: c.windowSize,
        globalAttnIndexes: c.encoderGlobalAttnIndexes,
      }),
    );
    this.prompt_encoder = this.child(
      'prompt_encoder',
      new PromptEncoder({ embedDim: c.promptEmbedDim, imageEmbeddingSize: [grid, grid], inputImageSize: [c.imageSize, c.imageSize], maskInChans: c.maskInChans }),
    );
    this.mask_decoder = this.child(
      'mask_decoder',
      new MaskDecoder(new TwoWayTransformer(c.decoderDepth, c.promptEmbedDim, c.decoderNumHeads, c.decoderMlpDim, c.attentionDownsampleRate), {
        transformerDim: c.promptEmbedDim,
        numMultimaskOutputs: c.numMultimaskOutputs,
        iouHeadDepth: c.iouHeadDepth,
        iouHeadHiddenDim: c.iouHeadHiddenDim,
      }),
    );
  }

  /**
   * The checkpoint layout this model loads: its state_dict keys and shapes (for vit_b, the 314 keys
   * of medsam_vit_b.pth and sam_vit_b_01ec64.pth), for weights.load / weights.convert.
   */
  schema(): Schema {
    const name = Object.entries(MEDSAM_CONFIGS).find(([, c]) => c === this.config)?.[0] ?? 'custom';
    return {
      id: `medsam_${name}`,
      model: 'medsam',
      description: `MedSAM / SAM state_dict, config '${name}'`,
      tensors: new Map([...this.stateDict()].map(([k, t]) => [k, [...t.shape]])),
    };
  }

  /**
   * Reads a checkpoint (.pth: a state dict, or a training checkpoint such as MedSAM's
   * {"model", "optimizer", "epoch"}; or a converted .safetensors), checks it against schema() and
   * loads it strictly. Returns the reader's notes (where the state dict was found, ...).
   */
  async loadWeights(source: WeightSource, options: Pick<LoadOptions, 'onProgress' | 'fetchInit'> = {}): Promise<{ notes: string[]; metadata: Record<string, string> }> {
    const loaded = await load(source, { ...options, model: 'medsam', schemas: [this.schema()] });
    try {
      this.loadStateDict(loaded.tensors);
    } finally {
      for (const t of loaded.tensors.values()) t.dispose();
    }
    return { notes: loaded.notes, metadata: loaded.metadata };
  }

  /** An interactive predictor on this model: setImage() once, then predict({ box }) per prompt. */
  async predictor(): Promise<MedSAMPredictor> {
    this.eval();
    return new MedSAMPredictor(this);
  }

  /** The image embedding [B, promptEmbedDim, grid, grid] of images [B, 3, imageSize, imageSize] (MedSAM: values in [0, 1]). */
  embedImage(images: Tensor): Tensor {
    return this.image_encoder.forward(images);
  }

  /** Prompt encoder and mask decoder on a computed image embedding ([1 or B, C, grid, grid]). */
  decode(imageEmbeddings: Tensor, prompts: Prompts, multimaskOutput = false): MedSAMOutput {
    const { sparse, dense } = this.prompt_encoder.forward(prompts);
    const { masks, iouPred } = this.mask_decoder.forward({
      imageEmbeddings,
      imagePe: this.prompt_encoder.getDensePe(),
      sparsePromptEmbeddings: sparse,
      densePromptEmbeddings: dense,
      multimaskOutput,
    });
    return { lowResLogits: masks, iouPredictions: iouPred };
  }

  /** MedSAM's forward (its training script's MedSAM module): images and prompts -> low-res logits and IoU. */
  forward(images: Tensor, prompts: Prompts, multimaskOutput = false): MedSAMOutput {
    return this.decode(this.embedImage(images), prompts, multimaskOutput);
  }
}
