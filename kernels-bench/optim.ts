// Optimiser step benchmark: one in-place update over the parameters of a MedSAM-ViT-B-sized model
// (about 90M f32 values, in 12 tensors of 7.5M; --quick: AdamW over 4 of 256K), for SGD with momentum, Adam
// and AdamW+AMSGrad. Memory-bound: bytes count every read and write of parameter, gradient and
// state. Checked: a fresh optimiser's first step on the first tensor against the float64 first-step
// update (SGD: p - lr g; Adam: p - lr g / (|g| + eps); AdamW also decays p by 1 - lr wd first).
import { optim, randn, type Tensor } from 'medseg';
import type { BenchCase, BenchFamily } from './case.js';
import { relErr, sampleIndices } from './check.js';

type Variant = 'SGD momentum' | 'Adam' | 'AdamW amsgrad';
const LR = 1e-3;

function make(variant: Variant, params: Tensor[]): optim.Optimizer<{ lr: number }> {
  return variant === 'SGD momentum'
    ? new optim.SGD(params, { lr: LR, momentum: 0.9 })
    : variant === 'Adam'
      ? new optim.Adam(params, { lr: LR })
      : new optim.AdamW(params, { lr: LR, amsgrad: true, weightDecay: 0.01 });
}

function firstStep(variant: Variant, p: number, g: number): number {
  if (variant === 'SGD momentum') return p - LR * g;
  const decayed = variant === 'AdamW amsgrad' ? p * (1 - LR * 0.01) : p;
  return decayed - (LR * g) / (Math.abs(g) + 1e-8);
}

function optimCase(variant: Variant, tensors: number, per: number): BenchCase {
  const n = tensors * per;
  // values read + written per element: param r/w, grad r, and state r/w
  const words = variant === 'SGD momentum' ? 5 : variant === 'Adam' ? 7 : 9;
  return {
    name: `optimizer step ${n >= 1e6 ? `${(n / 1e6).toFixed(0)}M` : `${(n / 1e3).toFixed(0)}K`} params`,
    label: variant,
    flops: (variant === 'SGD momentum' ? 6 : 14) * n,
    bytes: 4 * words * n,
    setup() {
      const params = Array.from({ length: tensors }, (_, i) => {
        const p = randn([per], { seed: i, requiresGrad: true });
        p.grad = randn([per], { seed: 100 + i });
        return p;
      });
      const opt = make(variant, params);
      return {
        run: () => opt.step(),
        async check() {
          const p = params[0];
          const [P0, G] = await Promise.all([p.read(), p.grad!.read()]);
          const fresh = make(variant, [p]);
          fresh.step();
          const P1 = await p.read();
          fresh.dispose();
          const idx = sampleIndices(per);
          return relErr(idx.map((i) => P1[i] - P0[i]), idx.map((i) => firstStep(variant, P0[i], G[i]) - P0[i]));
        },
        teardown() {
          opt.dispose();
          for (const p of params) {
            p.grad?.dispose();
            p.dispose();
          }
        },
      };
    },
  };
}

const variants: Variant[] = ['SGD momentum', 'Adam', 'AdamW amsgrad'];

export const family: BenchFamily = {
  cases: variants.map((v) => optimCase(v, 12, 2304 * 3264)),
  quick: [optimCase('AdamW amsgrad', 4, 1 << 18)],
};
