// `nn`: modules with PyTorch's names and state_dict keys.
export { Module, copyInto, type StateDict, type LoadResult } from './module.js';
