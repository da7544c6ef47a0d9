// Convolution benchmarks: conv3d / convTranspose3d / conv2d / convTranspose2d at the shapes the
// models run (V-Net's 5x5x5 convs and stride-2 down/up convs per stage, ResNet-50's stage convs at
// 224x224, SAM's neck and mask-decoder upscaling), each in every variant the registry has for its
// launches (naive, tiled implicit GEMM in its tile sizes tiled, tiled-k32, tiled-m16; direct
// where stride 1). Training cases run forward and
// backward (input and weight gradients: three times the forward's work). FLOPs count 2 per
// multiply-add of the dense convolution; bytes are input + weight + output once (training: also
// their gradients). Checked: sampled outputs (training: sampled weight-gradient entries) against
// float64 sums over the inputs read back.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { prod, relErr, sampleIndices, unravel } from './check.js';

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

/** Spatial sizes lifted to 3 axes (leading 1s). */
const lift3 = (v: readonly number[]) => [...new Array<number>(3 - v.length).fill(1), ...v];
/** Spatial coordinates lifted to 3 axes (leading 0s). */
const at3 = (v: readonly number[]) => [...new Array<number>(3 - v.length).fill(0), ...v];

/**
 * The float64 value at output flat index f: conv y[n,co,o] = b + sum_{ci,k} w[co,ci,k] x[n,ci,o*s-p+k];
 * transposed y[n,co,o] = b + sum_{ci,k} x[n,ci,i] w[ci,co,k] over i*s - p + k = o.
 */
function convAt(s: Shape, X: Float32Array, Wt: Float32Array, B: Float32Array, outShape: number[], f: number): number {
  const [n, co, ...o] = unravel(f, outShape);
  const [oz, oy, ox] = at3(o);
  const [, C, ...xsp] = s.x;
  const [D, H, W] = lift3(xsp);
  const [kd, kh, kw] = lift3(s.w.slice(2));
  const st = s.stride ?? 1;
  const p = (s.padding ?? 0) * 1;
  const pd = s.x.length === 5 ? p : 0;
  const cout = s.transposed ? s.w[1] : s.w[0];
  let acc = B[co];
  for (let ci = 0; ci < C; ci++) {
    for (let a = 0; a < kd; a++) for (let b = 0; b < kh; b++) for (let c = 0; c < kw; c++) {
      let iz: number, iy: number, ix: number;
      if (s.transposed) {
        const tz = oz + pd - a, ty = oy + p - b, tx = ox + p - c;
        if (tz % st || ty % st || tx % st) continue;
        iz = tz / st; iy = ty / st; ix = tx / st;
      } else {
        iz = oz * st - pd + a; iy = oy * st - p + b; ix = ox * st - p + c;
      }
      if (iz < 0 || iy < 0 || ix < 0 || iz >= D || iy >= H || ix >= W) continue;
      const xv = X[(((n * C + ci) * D + iz) * H + iy) * W + ix];
      const wi = s.transposed ? (((ci * cout + co) * kd + a) * kh + b) * kw + c : (((co * C + ci) * kd + a) * kh + b) * kw + c;
      acc += xv * Wt[wi];
    }
  }
  return acc;
}

/** The float64 weight gradient at weight flat index f, from x and the output gradient g. */
function weightGradAt(s: Shape, X: Float32Array, G: Float32Array, outShape: number[], f: number): number {
  const [w0, w1, ...k] = unravel(f, s.w);
  const [a, b, c] = at3(k);
  const [N, C, ...xsp] = s.x;
  const [D, H, W] = lift3(xsp);
  const [, cout, ...osp] = outShape;
  const [OD, OH, OW] = lift3(osp);
  const st = s.stride ?? 1;
  const p = s.padding ?? 0;
  const pd = s.x.length === 5 ? p : 0;
  const [co, ci] = s.transposed ? [w1, w0] : [w0, w1];
  let acc = 0;
  for (let n = 0; n < N; n++) {
    if (s.transposed) {
      // dW[ci, co, k] = sum_i x[n, ci, i] g[n, co, i*s - p + k]
      for (let iz = 0; iz < D; iz++) for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) {
        const oz = iz * st - pd + a, oy = iy * st - p + b, ox = ix * st - p + c;
        if (oz < 0 || oy < 0 || ox < 0 || oz >= OD || oy >= OH || ox >= OW) continue;
        acc += X[(((n * C + ci) * D + iz) * H + iy) * W + ix] * G[(((n * cout + co) * OD + oz) * OH + oy) * OW + ox];
      }
    } else {
      // dW[co, ci, k] = sum_o g[n, co, o] x[n, ci, o*s - p + k]
      for (let oz = 0; oz < OD; oz++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
        const iz = oz * st - pd + a, iy = oy * st - p + b, ix = ox * st - p + c;
        if (iz < 0 || iy < 0 || ix < 0 || iz >= D || iy >= H || ix >= W) continue;
        acc += X[(((n * C + ci) * D + iz) * H + iy) * W + ix] * G[(((n * cout + co) * OD + oz) * OH + oy) * OW + ox];
      }
    }
  }
  return acc;
}

function makeCase(s: Shape): BenchCase {
  const cout = s.transposed ? s.w[1] : s.w[0];
  const cinPerOut = s.transposed ? s.w[0] : s.w[1];
  const outShape = [s.x[0], cout, ...outSpatial(s)];
  const kvol = prod(s.w.slice(2));
  // The transposed conv's dense work: every input meets every kernel tap of every output channel.
  const macs = s.transposed ? prod(s.x) * cout * kvol : prod(outShape) * cinPerOut * kvol;
  const training = !!s.training;
  return {
    name: s.name,
    registry: 'conv',
    flops: 2 * macs * (training ? 3 : 1),
    bytes: 4 * (prod(s.x) + prod(s.w) + prod(outShape)) * (training ? 2 : 1),
    setup() {
      const x = randn(s.x, { seed: 1, requiresGrad: training });
      const w = randn(s.w, { seed: 2, requiresGrad: training });
      const b = randn([cout], { seed: 3 });
      const g = training ? randn(outShape, { seed: 4 }) : null;
      const nd = s.x.length - 2;
      const opts = { stride: s.stride ?? 1, padding: s.padding ?? 0 };
      let y: Tensor | null = null;
      return {
        run() {
          y?.dispose();
          y = s.transposed ? (nd === 3 ? F.convTranspose3d : F.convTranspose2d)(x, w, b, opts) : (nd === 3 ? F.conv3d : F.conv2d)(x, w, b, opts);
          if (g) {
            x.zeroGrad();
            w.zeroGrad();
            y.backward(g);
          }
        },
        async check() {
          const [X, Wt, B] = await Promise.all([x.read(), w.read(), b.read()]);
          if (g) {
            const [G, dW] = await Promise.all([g.read(), w.grad!.read()]);
            const idx = sampleIndices(dW.length, 16);
            return relErr(idx.map((f) => dW[f]), idx.map((f) => weightGradAt(s, X, G, outShape, f)));
          }
          const Y = await y!.read();
          const idx = sampleIndices(Y.length);
          return relErr(idx.map((f) => Y[f]), idx.map((f) => convAt(s, X, Wt, B, outShape, f)));
        },
        teardown() {
          for (const t of [x.grad, w.grad, x, w, b, g, y]) t?.dispose();
        },
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

const quick: Shape[] = [
  { name: 'conv3d 4->8 k5 @ 8x8x16', x: [1, 4, 8, 8, 16], w: [8, 4, 5, 5, 5], padding: 2 },
  { name: 'V-Net up 32->16 k2 s2 @ 4x8x8', x: [1, 32, 4, 8, 8], w: [32, 16, 2, 2, 2], stride: 2, transposed: true },
  { name: 'train conv3d 4->4 k3 @ 8x8x8', x: [1, 4, 8, 8, 8], w: [4, 4, 3, 3, 3], padding: 1, training: true },
  { name: 'conv2d 32->64 3x3 @ 16x16', x: [1, 32, 16, 16], w: [64, 32, 3, 3], padding: 1 },
];

export const family: BenchFamily = { cases: shapes.map(makeCase), quick: quick.map(makeCase) };
