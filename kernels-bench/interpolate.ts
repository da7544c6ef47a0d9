// interpolate benchmark: the gather forward and the gather-form backward at the model shapes:
// TransUNet's decoder x2 bilinear upsampling (alignCorners=true) and MedSAM's mask resize
// 256 -> 1024 (alignCorners=false), and a trilinear x2 on a V-Net-sized volume.
import { F, randn, type Tensor } from 'medseg';
import type { BenchCase } from './case.js';


const SHAPES: { name: string; shape: number[]; size: number[]; mode: 'bilinear' | 'trilinear'; alignCorners: boolean }[] = [
  { name: 'TransUNet decoder [1, 256, 28, 28] -> 56', shape: [1, 256, 28, 28], size: [56, 56], mode: 'bilinear', alignCorners: true },
  { name: 'TransUNet decoder [1, 64, 112, 112] -> 224', shape: [1, 64, 112, 112], size: [224, 224], mode: 'bilinear', alignCorners: true },
  { name: 'MedSAM mask [1, 1, 256, 256] -> 1024', shape: [1, 1, 256, 256], size: [1024, 1024], mode: 'bilinear', alignCorners: false },
  { name: 'trilinear [1, 16, 32, 64, 64] x2', shape: [1, 16, 32, 64, 64], size: [64, 128, 128], mode: 'trilinear', alignCorners: false },
];

function interpCase(s: (typeof SHAPES)[number], backward: boolean): BenchCase {
  const nIn = s.shape.reduce((a, b) => a * b, 1);
  const nOut = s.shape[0] * s.shape[1] * s.size.reduce((a, b) => a * b, 1);
  const taps = s.mode === 'trilinear' ? 8 : 4;
  let x: Tensor | null = null;
  let g: Tensor | null = null;
  let y: Tensor | null = null;
  let out: Tensor | null = null;
  return {
    name: `interpolate ${s.name}`,
    variant: backward ? 'backward (gather)' : 'forward',
    flops: 2 * taps * nOut,
    bytes: 4 * (nIn + nOut),
    setup() {
      x = randn(s.shape, { seed: 1, requiresGrad: backward });
      if (!backward) {
        return () => {
          out?.dispose();
          out = F.interpolate(x!, { size: s.size, mode: s.mode, alignCorners: s.alignCorners });
        };
      }
      y = F.interpolate(x, { size: s.size, mode: s.mode, alignCorners: s.alignCorners });
      g = randn(y.shape, { seed: 2 });
      return () => {
        x!.grad?.dispose();
        x!.grad = null;
        y!.backward(g!, { retainGraph: true });
      };
    },
    teardown() {
      for (const t of [x?.grad, x, y, g, out]) t?.dispose();
      x = y = g = out = null;
    },
  };
}

export const cases: BenchCase[] = SHAPES.flatMap((s) => [interpCase(s, false), interpCase(s, true)]);
