// Normalisation benchmarks at the models' shapes: V-Net's BatchNorm3d over 16 channels of a
// 64x128x128 volume (few very long rows, the chunked kernel), TransUNet's GroupNorm(32) on the
// ResNet stem, SAM's LayerNorm2d on the 256x64x64 neck and LayerNorm over 4096x768 tokens.
// Bytes: input read twice (statistics) and once more with the output written (the row kernels);
// FLOPs: about 8 per element (two statistics passes and the affine normalisation).
import { F, ones, randn, zeros, type Tensor } from 'medseg';
import type { BenchCase } from './case.js';


const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

function normCase(name: string, shape: number[], channels: number, op: (x: Tensor, w: Tensor, b: Tensor) => Tensor): BenchCase {
  const n = prod(shape);
  return {
    name,
    variant: 'row kernel',
    flops: 8 * n,
    bytes: 4 * 4 * n,
    setup() {
      const x = randn(shape);
      const w = randn([channels]);
      const b = randn([channels]);
      return () => op(x, w, b).dispose();
    },
  };
}

export const cases: BenchCase[] = [
  normCase('batchNorm3d train 16 ch @ 64x128x128', [1, 16, 64, 128, 128], 16, (() => {
    let rm: Tensor | null = null;
    let rv: Tensor | null = null;
    return (x: Tensor, w: Tensor, b: Tensor) => F.batchNorm(x, (rm ??= zeros([16])), (rv ??= ones([16])), w, b, true, 0.1, 1e-5);
  })()),
  normCase('groupNorm(32) 64 ch @ 112x112', [1, 64, 112, 112], 64, (x, w, b) => F.groupNorm(x, 32, w, b, 1e-6)),
  normCase('layerNorm2d 256 ch @ 64x64', [1, 256, 64, 64], 256, (x, w, b) => F.layerNorm2d(x, w, b)),
  normCase('layerNorm 4096x768', [4096, 768], 768, (x, w, b) => F.layerNorm(x, [768], w, b)),
];
