// Segmentation networks built on nn: V-Net (3D). Module names equal the PyTorch ones, so converted
// checkpoints load with loadStateDict(strict).
export { VNet, VNET_PRESETS, vnetConfig, type VNetConfig, type VNetVariant, type VNetActivation, type VNetPreset, type BatchNormMode } from './vnet.js';
export {
  segmentVolume,
  vnetMetadata,
  vnetSettingsFrom,
  normalizeIntensity,
  windowStarts,
  gaussianWeights,
  resampledSize,
  checkPreprocessing,
  VNET_PREPROCESSING,
  type VNetPreprocessing,
  type IntensityNormalization,
  type SegmentOptions,
  type SegmentProgress,
  type SegmentResult,
} from './vnet-inference.js';
export { VNetTrainer, prepareCase, samplePatch, sampleBatch, patchRandom, type TrainingCase, type PatchOptions, type BatchOptions, type StepResult } from './vnet-train.js';
export { labelOverlap, type LabelOverlap } from './label-overlap.js';
export { randomDeformation, bsplineField, bsplineWeights, type DeformationOptions } from './deformation.js';
export * from './medsam/index.js';
export * from './transunet/index.js';
