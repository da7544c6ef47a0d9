// `medseg/gpu`: the runtime's lower layer for benchmarks and custom kernels (registry, dispatch,
// kernel variants).
export { init, runtime, Runtime, type DispatchSpec } from './runtime.js';
export { KernelRegistry, type Pipeline } from './kernels.js';
export { BufferPool, bucketSize, fmtBytes } from './buffer-pool.js';
export { setKernelVariant, kernelFamilies, kernelFamily, adapterKind, type AdapterKind, type KernelFamily, type KernelVariant } from './variants.js';
