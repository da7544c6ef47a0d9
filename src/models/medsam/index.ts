// MedSAM: SAM ViT-B's image encoder, prompt encoder and mask decoder (files as segment-anything's
// modeling/ folder splits them) and the model with its configurations.
export { MedSAM, MEDSAM_CONFIGS, type MedSAMConfig, type MedSAMConfigName, type MedSAMOptions, type MedSAMOutput } from './medsam.js';
export { ImageEncoderViT, Block as ImageEncoderBlock, Attention as ImageEncoderAttention, PatchEmbed, type ImageEncoderOptions } from './image-encoder.js';
export { PromptEncoder, PositionEmbeddingRandom, type PromptEncoderOptions, type Prompts, type PointPrompt } from './prompt-encoder.js';
export { MaskDecoder, type MaskDecoderOptions, type MaskDecoderInput } from './mask-decoder.js';
export { TwoWayTransformer, TwoWayAttentionBlock, Attention as TwoWayAttention } from './transformer.js';
export { MLP, MLPBlock, Embedding } from './common.js';
export { MedSAMPredictor, type PredictOptions, type Prediction, type Box } from './predictor.js';
export { medsamPreprocess, resizeCubic, type ImageInput } from './preprocess.js';
export { MedSAMTrainer, medsamLoss, jitteredBox, type MedSAMTrainerOptions, type MedSAMStep } from './train.js';
