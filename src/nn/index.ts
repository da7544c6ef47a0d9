// `nn`: modules with PyTorch's names and state_dict keys.
export { Module, copyInto, type StateDict, type LoadResult } from './module.js';
export { Conv1d, Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d, StdConv2d } from './conv.js';
export { BatchNorm2d, BatchNorm3d, GroupNorm, LayerNorm, LayerNorm2d } from './norm.js';
export { PReLU } from './activation.js';
export { MaxPool2d, AvgPool2d } from './pooling.js';
