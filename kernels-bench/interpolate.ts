// interpolate benchmark: the gather forward and the gather-form backward at the model shapes:
// TransUNet's decoder x2 bilinear upsampling (alignCorners=true) and MedSAM's mask resize
// 256 -> 1024 (alignCorners=false), and a trilinear x2 on a V-Net-sized volume. Checked: sampled
// outputs (backward: sampled input-gradient entries, from a float64 scatter of the output gradient
// over the sampled entry's channel) with PyTorch's coordinate rules.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { prod, relErr, sampleIndices, unravel } from './check.js';

interface Shape {
  name: string;
  shape: number[];
  size: number[];
  mode: 'bilinear' | 'trilinear';
  alignCorners: boolean;
}

/** Per spatial axis of one output coordinate: [i0, i1, weight of i1]. */
function taps(inN: number, outN: number, o: number, align: boolean): [number, number, number] {
  const src = align ? (outN > 1 ? (o * (inN - 1)) / (outN - 1) : 0) : Math.max(0, ((o + 0.5) * inN) / outN - 0.5);
  const i0 = Math.min(Math.floor(src), inN - 1);
  const i1 = Math.min(i0 + 1, inN - 1);
  return [i0, i1, src - i0];
}

/** Calls fn(input spatial flat index, weight) for each tap of output spatial position `o`. */
function eachTap(s: Shape, o: number[], fn: (i: number, wt: number) => void): void {
  const inSp = s.shape.slice(2);
  const t = o.map((v, a) => taps(inSp[a], s.size[a], v, s.alignCorners));
  const k = inSp.length;
  for (let m = 0; m < 1 << k; m++) {
    let idx = 0;
    let wt = 1;
    for (let a = 0; a < k; a++) {
      const hi = (m >> (k - 1 - a)) & 1;
      idx = idx * inSp[a] + (hi ? t[a][1] : t[a][0]);
      wt *= hi ? t[a][2] : 1 - t[a][2];
    }
    fn(idx, wt);
  }
}

function interpCase(s: Shape, backward: boolean): BenchCase {
  const nIn = prod(s.shape);
  const outShape = [s.shape[0], s.shape[1], ...s.size];
  const nOut = prod(outShape);
  const taps8 = s.mode === 'trilinear' ? 8 : 4;
  const inSpatial = prod(s.shape.slice(2));
  const outSpatial = prod(s.size);
  return {
    name: `interpolate ${s.name}`,
    label: backward ? 'backward (gather)' : 'forward',
    flops: 2 * taps8 * nOut,
    bytes: 4 * (nIn + nOut),
    setup() {
      const x = randn(s.shape, { seed: 1, requiresGrad: backward });
      const opts = { size: s.size, mode: s.mode, alignCorners: s.alignCorners };
      let out: Tensor | null = null;
      const y = backward ? F.interpolate(x, opts) : null;
      const g = backward ? randn(outShape, { seed: 2 }) : null;
      return {
        run() {
          if (!backward) {
            out?.dispose();
            out = F.interpolate(x, opts);
            return;
          }
          x.zeroGrad();
          y!.backward(g!, { retainGraph: true });
        },
        async check() {
          const X = await x.read();
          if (!backward) {
            const O = await out!.read();
            const idx = sampleIndices(nOut);
            const want = idx.map((f) => {
              const [n, c, ...o] = unravel(f, outShape);
              let acc = 0;
              eachTap(s, o, (i, wt) => (acc += wt * X[(n * s.shape[1] + c) * inSpatial + i]));
              return acc;
            });
            return relErr(idx.map((f) => O[f]), want);
          }
          const [G, dX] = await Promise.all([g!.read(), x.grad!.read()]);
          const idx = sampleIndices(nIn, 24);
          const perChannel = new Map<number, Float64Array>();
          const want = idx.map((f) => {
            const nc = Math.floor(f / inSpatial);
            let acc = perChannel.get(nc);
            if (!acc) {
              const a = new Float64Array(inSpatial);
              for (let o = 0; o < outSpatial; o++) {
                const gv = G[nc * outSpatial + o];
                eachTap(s, unravel(o, s.size), (i, wt) => (a[i] += wt * gv));
              }
              perChannel.set(nc, (acc = a));
            }
            return acc[f % inSpatial];
          });
          return relErr(idx.map((f) => dX[f]), want);
        },
        teardown() {
          for (const t of [x.grad, x, y, g, out]) t?.dispose();
        },
      };
    },
  };
}

const SHAPES: Shape[] = [
  { name: 'TransUNet decoder [1, 256, 28, 28] -> 56', shape: [1, 256, 28, 28], size: [56, 56], mode: 'bilinear', alignCorners: true },
  { name: 'TransUNet decoder [1, 64, 112, 112] -> 224', shape: [1, 64, 112, 112], size: [224, 224], mode: 'bilinear', alignCorners: true },
  { name: 'MedSAM mask [1, 1, 256, 256] -> 1024', shape: [1, 1, 256, 256], size: [1024, 1024], mode: 'bilinear', alignCorners: false },
  { name: 'trilinear [1, 16, 32, 64, 64] x2', shape: [1, 16, 32, 64, 64], size: [64, 128, 128], mode: 'trilinear', alignCorners: false },
];

const QUICK: Shape[] = [
  { name: 'bilinear [1, 16, 28, 28] -> 56', shape: [1, 16, 28, 28], size: [56, 56], mode: 'bilinear', alignCorners: true },
];

export const family: BenchFamily = {
  cases: SHAPES.flatMap((s) => [interpCase(s, false), interpCase(s, true)]),
  quick: QUICK.flatMap((s) => [interpCase(s, false), interpCase(s, true)]),
};
