// `optim`: optimisers updating parameters in place with WGSL kernels, and learning-rate schedules.
export { Optimizer, type OptimizerStateDict, type ParamGroup, type ParamsArg, type GroupOptions } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { LRScheduler, PolyLR, CosineLR, type CosineLROptions } from './lr-scheduler.js';
