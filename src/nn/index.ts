// `nn`: modules with PyTorch's names and state_dict keys.
export { Module, copyInto, type StateDict, type LoadResult } from './module.js';
export { Linear, type LinearOptions } from './linear.js';
export { Dropout } from './dropout.js';
export { ReLU, GELU, ELU, PReLU } from './activation.js';
export { Sequential, ModuleList, type Forward } from './container.js';
export { Conv1d, Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d, StdConv2d } from './conv.js';
export { BatchNorm2d, BatchNorm3d, GroupNorm, LayerNorm, LayerNorm2d } from './norm.js';
export { MaxPool2d, AvgPool2d } from './pooling.js';
