// Optimiser step benchmark: one in-place update over the parameters of a MedSAM-ViT-B-sized model
// (about 90M f32 values, in 12 tensors of 7.5M), for SGD with momentum, Adam and AdamW+AMSGrad.
// Memory-bound: bytes count every read and write of parameter, gradient and state.
import { optim, randn, type Tensor } from 'medseg';
import type { BenchCase } from './case.js';


const TENSORS = 12;
const PER = 2304 * 3264; // ~7.5M

function optimCase(variant: 'SGD momentum' | 'Adam' | 'AdamW amsgrad'): BenchCase {
  const n = TENSORS * PER;
  // values read + written per element: param r/w, grad r, and state r/w
  const words = variant === 'SGD momentum' ? 5 : variant === 'Adam' ? 7 : 9;
  let params: Tensor[] = [];
  let opt: optim.Optimizer<{ lr: number }> | null = null;
  return {
    name: `optimizer step ${(n / 1e6).toFixed(0)}M params`,
    variant,
    flops: (variant === 'SGD momentum' ? 6 : 14) * n,
    bytes: 4 * words * n,
    setup() {
      params = Array.from({ length: TENSORS }, (_, i) => {
        const p = randn([PER], { seed: i, requiresGrad: true });
        p.grad = randn([PER], { seed: 100 + i });
        return p;
      });
      opt =
        variant === 'SGD momentum'
          ? new optim.SGD(params, { lr: 1e-3, momentum: 0.9 })
          : variant === 'Adam'
            ? new optim.Adam(params, { lr: 1e-4 })
            : new optim.AdamW(params, { lr: 1e-4, amsgrad: true });
      return () => opt!.step();
    },
    teardown() {
      opt?.dispose();
      for (const p of params) {
        p.grad?.dispose();
        p.dispose();
      }
      params = [];
      opt = null;
    },
  };
}

export const cases: BenchCase[] = [optimCase('SGD momentum'), optimCase('Adam'), optimCase('AdamW amsgrad')];
