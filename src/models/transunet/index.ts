// TransUNet: the ResNetV2 hybrid, the ViT encoder, the cascaded decoder and the model with its
// configurations (files as TransUNet's networks/ splits the concepts).
export { TransUNet, TRANSUNET_CONFIGS, transunetMetadata, type TransUNetConfig, type TransUNetConfigName, type TransUNetOptions } from './transunet.js';
export { transunetSchema, transunetOptionsFromShapes, transunetConfigFromShapes, type TransUNetShapeOptions } from './schema.js';
export { ResNetV2, Root as ResNetRoot, Stage as ResNetStage, PreActBottleneck, type ResNetV2Output } from './resnet-v2.js';
export { Transformer, Embeddings, Encoder, Block as TransUNetBlock, Attention as TransUNetAttention, Mlp as TransUNetMlp, type TransformerOptions } from './vit.js';
export { DecoderCup, DecoderBlock, Conv2dReLU, SegmentationHead, upsample2x, type DecoderOptions } from './decoder.js';
export { segmentSlices, segmentVolumeSlices, transunetPreprocess, transunetWindow, zoomCubic, zoomNearest, TRANSUNET_CT_WINDOW, type TransUNetSegmentOptions, type TransUNetSegmentResult } from './inference.js';
export { TransUNetTrainer, transunetLoss, transunetLosses, randomGenerator, drawAugmentation, applyAugmentation, rot90, flip, rotateNearest, type TransUNetTrainerOptions, type TransUNetStep, type TrainingSlice, type Augmentation, type Plane } from './train.js';
export { labelClasses, volumeTrainingSlices, trainingBatch } from './training-slices.js';
