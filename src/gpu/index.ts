// `medseg/gpu`: the runtime's lower layer for benchmarks and custom kernels (registry, dispatch,
// kernel variants).
export { init, runtime, Runtime, OutOfMemoryError, type DispatchSpec, type DeviceLoss } from './runtime.js';
export { KernelRegistry, type Pipeline } from './kernels.js';
export { BufferPool, bucketSize, fmtBytes } from './buffer-pool.js';
export { setKernelVariant, kernelFamilies, kernelFamily, adapterKind, forcedVariant, recordPicks, type AdapterKind, type KernelFamily, type KernelVariant, type PickRecord, type PickSource } from './variants.js';
export { tune, tuneFamily, mergeTuned, replaceMeasured, useTunedTable, parseTunedTable, adapterKey, activeTunedTable, loadStoredTunedTable, storeTunedTable, type TuneWorkload, type TuneTimer, type TunedTable, type TunedEntry } from './tune.js';
export { profileKernels, timestampSupport, type KernelProfile, type KernelTime } from './kernel-profile.js';
