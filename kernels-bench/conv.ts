// Convolution benchmarks: conv3d / convTranspose3d / conv2d forward at the shapes the models run
// (V-Net's 5x5x5 convs and stride-2 down/up convs per stage, ResNet-50's stage convs at 224x224,
// SAM's neck), each in the naive (one invocation per output) and tiled (implicit GEMM) variants,
// and stride-1 convs also in the direct (register-blocked) variant.
// Training cases run forward and backward (input and weight gradients: three times the forward's
// work). FLOPs count 2 per multiply-add of the dense convolution; bytes are input + weight + output
// once (for training, also their gradients).
import { F, randn, type Tensor } from 'medseg';
import { kernelFamily, setKernelVariant } from 'medseg/gpu';
import type { BenchCase } from './case.js';


const prod = (v: readonly number[]) => v.reduce((a, b) => a * b, 1);

interface Shape {
  name: string;
  /** input [N, C, ...spatial] */
  x: number[];
  /** weight as PyTorch lays it out */
  w: number[];
  stride?: number;
  padding?: number;
  transposed?: boolean;
  /** forward + backward to input and weight */
  training?: boolean;
}

function outSpatial(s: Shape): number[] {
  const k = s.w.slice(2);
  const st = s.stride ?? 1;
  const p = s.padding ?? 0;
  return s.x.slice(2).map((n, i) => (s.transposed ? (n - 1) * st - 2 * p + k[i] : Math.floor((n + 2 * p - k[i]) / st) + 1));
}

function makeCase(s: Shape, variant: string): BenchCase {
  const cout = s.transposed ? s.w[1] : s.w[0];
  const cinPerOut = s.transposed ? s.w[0] : s.w[1];
  const outShape = [s.x[0], cout, ...outSpatial(s)];
  const kvol = prod(s.w.slice(2));
  // The transposed conv's dense work: every input meets every kernel tap of every output channel.
  const macs = s.transposed ? prod(s.x) * cout * kvol : prod(outShape) * cinPerOut * kvol;
  const training = !!s.training;
  return {
    name: s.name,
    variant,
    flops: 2 * macs * (training ? 3 : 1),
    bytes: 4 * (prod(s.x) + prod(s.w) + prod(outShape)) * (training ? 2 : 1),
    setup() {
      const x = randn(s.x, { requiresGrad: training });
      const w = randn(s.w, { requiresGrad: training });
      const b = randn([cout]);
      const g = training ? randn(outShape) : null;
      const nd = s.x.length - 2;
      const op = (xx: Tensor): Tensor => {
        if (s.transposed) return (nd === 3 ? F.convTranspose3d : F.convTranspose2d)(xx, w, b, { stride: s.stride ?? 1, padding: s.padding ?? 0 });
        return (nd === 3 ? F.conv3d : F.conv2d)(xx, w, b, { stride: s.stride ?? 1, padding: s.padding ?? 0 });
      };
      return () => {
        setKernelVariant('conv', variant);
        try {
          const y = op(x);
          if (g) {
            y.backward(g);
            x.zeroGrad();
            w.zeroGrad();
          }
          y.dispose();
        } finally {
          setKernelVariant('conv', null);
        }
      };
    },
  };
}

const shapes: Shape[] = [
  // V-Net input block and LUConv: 5x5x5, padding 2 (volumes D x H x W)
  { name: 'conv3d 1->16 k5 @ 32x64x64', x: [1, 1, 32, 64, 64], w: [16, 1, 5, 5, 5], padding: 2 },
  { name: 'conv3d 16->16 k5 @ 32x64x64', x: [1, 16, 32, 64, 64], w: [16, 16, 5, 5, 5], padding: 2 },
  { name: 'conv3d 1->16 k5 @ 64x128x128', x: [1, 1, 64, 128, 128], w: [16, 1, 5, 5, 5], padding: 2 },
  { name: 'conv3d 16->16 k5 @ 64x128x128', x: [1, 16, 64, 128, 128], w: [16, 16, 5, 5, 5], padding: 2 },
  // V-Net down convs (k2 s2) per stage, input 64x128x128
  { name: 'V-Net down 16->32 k2 s2 @ 64x128x128', x: [1, 16, 64, 128, 128], w: [32, 16, 2, 2, 2], stride: 2 },
  { name: 'V-Net down 32->64 k2 s2 @ 32x64x64', x: [1, 32, 32, 64, 64], w: [64, 32, 2, 2, 2], stride: 2 },
  { name: 'V-Net down 64->128 k2 s2 @ 16x32x32', x: [1, 64, 16, 32, 32], w: [128, 64, 2, 2, 2], stride: 2 },
  { name: 'V-Net down 128->256 k2 s2 @ 8x16x16', x: [1, 128, 8, 16, 16], w: [256, 128, 2, 2, 2], stride: 2 },
  // V-Net up convs (transposed k2 s2), weight [Cin, Cout, 2, 2, 2]
  { name: 'V-Net up 256->128 k2 s2 @ 4x8x8', x: [1, 256, 4, 8, 8], w: [256, 128, 2, 2, 2], stride: 2, transposed: true },
  { name: 'V-Net up 256->64 k2 s2 @ 8x16x16', x: [1, 256, 8, 16, 16], w: [256, 64, 2, 2, 2], stride: 2, transposed: true },
  { name: 'V-Net up 128->32 k2 s2 @ 16x32x32', x: [1, 128, 16, 32, 32], w: [128, 32, 2, 2, 2], stride: 2, transposed: true },
  { name: 'V-Net up 64->16 k2 s2 @ 32x64x64', x: [1, 64, 32, 64, 64], w: [64, 16, 2, 2, 2], stride: 2, transposed: true },
  // V-Net training steps (forward + input and weight gradients); the first is the tiny preset's widest conv
  { name: 'train conv3d 8->8 k5 @ 2x16x32x32', x: [2, 8, 16, 32, 32], w: [8, 8, 5, 5, 5], padding: 2, training: true },
  { name: 'train conv3d 16->16 k5 @ 32x64x64', x: [1, 16, 32, 64, 64], w: [16, 16, 5, 5, 5], padding: 2, training: true },
  { name: 'train V-Net down 16->32 k2 s2 @ 64x128x128', x: [1, 16, 64, 128, 128], w: [32, 16, 2, 2, 2], stride: 2, training: true },
  { name: 'train V-Net up 64->16 k2 s2 @ 32x64x64', x: [1, 64, 32, 64, 64], w: [64, 16, 2, 2, 2], stride: 2, transposed: true, training: true },
  // ResNet-50 at 224x224
  { name: 'ResNet-50 stem 3->64 7x7 s2 @ 224', x: [1, 3, 224, 224], w: [64, 3, 7, 7], stride: 2, padding: 3 },
  { name: 'ResNet-50 stage1 64->64 3x3 @ 56', x: [1, 64, 56, 56], w: [64, 64, 3, 3], padding: 1 },
  { name: 'ResNet-50 stage1 64->256 1x1 @ 56', x: [1, 64, 56, 56], w: [256, 64, 1, 1] },
  { name: 'ResNet-50 stage2 128->128 3x3 @ 28', x: [1, 128, 28, 28], w: [128, 128, 3, 3], padding: 1 },
  { name: 'ResNet-50 stage3 256->256 3x3 @ 14', x: [1, 256, 14, 14], w: [256, 256, 3, 3], padding: 1 },
  { name: 'ResNet-50 stage4 512->512 3x3 @ 7', x: [1, 512, 7, 7], w: [512, 512, 3, 3], padding: 1 },
  // SAM's neck on the 64x64 image embedding
  { name: 'SAM neck 768->256 1x1 @ 64x64', x: [1, 768, 64, 64], w: [256, 768, 1, 1] },
  { name: 'SAM neck 256->256 3x3 @ 64x64', x: [1, 256, 64, 64], w: [256, 256, 3, 3], padding: 1 },
  // SAM's mask-decoder upscaling (transposed 2x2 s2)
  { name: 'SAM upscale 256->64 2x2 s2 @ 64x64', x: [1, 256, 64, 64], w: [256, 64, 2, 2], stride: 2, transposed: true },
];

/** The direct kernels run stride-1, undilated, ungrouped convs (the registry's 'direct' applies there). */
const directFits = (s: Shape) => !s.transposed && (s.stride ?? 1) === 1;

export const cases: BenchCase[] = shapes.flatMap((s) =>
  kernelFamily('conv')
    .variants.filter((v) => v.name !== 'direct' || directFits(s))
    .map((v) => makeCase(s, v.name)),
);
