// `nn`: modules with PyTorch's names and state_dict keys.
export { Module, copyInto, type StateDict, type LoadResult } from './module.js';
export { Linear, type LinearOptions } from './linear.js';
export { Dropout } from './dropout.js';
export { ReLU, GELU } from './activation.js';
export { Sequential, ModuleList, type Forward } from './container.js';
