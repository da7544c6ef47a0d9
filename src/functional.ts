// `F`: the functional ops with torch.nn.functional's names and argument meanings.
export { add, sub, mul, div, pow, neg, exp, log, sqrt, rsqrt, abs, clamp, where, sigmoid, tanh, sin, cos, relu, gelu, elu, prelu, gt, lt, eq, maximum, minimum } from './ops/elementwise.js';
export { sum, mean, max, min, variance as var, argmax, argmin } from './ops/reduce.js';
export { softmax, logSoftmax } from './ops/softmax.js';
export { matmul, linear } from './ops/matmul.js';
export { cat, pad, reshape, permute, transpose, expand, unsqueeze, squeeze, flatten, narrow, contiguous, clone } from './ops/shape.js';
export { interpolate } from './ops/interpolate.js';
export { warp } from './ops/warp.js';
export { diceLoss, crossEntropy, binaryCrossEntropyWithLogits, oneHot } from './ops/loss.js';
export { dropout } from './ops/dropout.js';
export { conv1d, conv2d, conv3d, convTranspose1d, convTranspose2d, convTranspose3d } from './ops/conv.js';
export { batchNorm, groupNorm, layerNorm, layerNorm2d, weightStandardize } from './ops/norm.js';
export { maxPool2d, maxPool2dWithIndices, avgPool2d } from './ops/pool.js';
export { scaledDotProductAttention } from './ops/attention.js';
