// medseg: a WebGPU tensor runtime with autograd, hand-written WGSL kernels, and medical
// segmentation networks on top. This is the public entry point.
import './ops/methods.js';

export { init, runtime, OutOfMemoryError, type Runtime, type InitOptions, type DeviceLoss } from './gpu/runtime.js';
export type { AdapterChoice } from './gpu/device.js';
export { Tensor, tensor, zeros, ones, full, arange, rand, randn, manualSeed, memoryStats, resetPeakMemory, type TensorOptions } from './tensor.js';
export { noGrad, isGradEnabled, setGradEnabled, backward } from './autograd.js';
export { scope, keep } from './scope.js';
export * as F from './functional.js';
export * as nn from './nn/index.js';
export * as io from './io/index.js';
export * as optim from './optim/index.js';
export * as weights from './weights/index.js';
export type { ConvVariant } from './ops/conv.js';
export * as models from './models/index.js';
