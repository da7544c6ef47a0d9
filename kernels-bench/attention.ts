// Attention benchmark: every variant the kernel registry lists for the 'attention' family that
// applies to the shape (fused: online softmax, K/V tiles in workgroup memory, score matrix never
// stored, one pipeline for every head dim; fused-specialised: the same compiled per head dim;
// composed: matmul + softmax + matmul), forward and forward+backward,
// at the shapes the models run: MedSAM's global blocks (12 heads x 4096 tokens x 64) and windowed
// blocks (25 windows x 12 heads x 196 x 64), TransUNet's ViT (12 x 196 x 64), and SAM's mask
// decoder (8 heads: token-to-image 7 x 4096 and image-to-token 4096 x 7 cross-attention at head
// dim 16, token self-attention 7 x 7 at head dim 32). The composition stores the B*H x Lq x Lk
// scores, so it is left out where they pass the default 128 MiB binding limit (the global blocks).
import { F, randn, type Tensor } from 'medseg';
import { kernelFamily, setKernelVariant } from 'medseg/gpu';
import type { BenchCase } from './case.js';

interface Shape {
  label: string;
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
}

const SHAPES: Shape[] = [
  { label: 'MedSAM global 12x4096x4096x64', B: 1, H: 12, Lq: 4096, Lk: 4096, D: 64 },
  { label: 'MedSAM windows 25x12x196x196x64', B: 25, H: 12, Lq: 196, Lk: 196, D: 64 },
  { label: 'TransUNet 12x196x196x64', B: 1, H: 12, Lq: 196, Lk: 196, D: 64 },
  { label: 'SAM decoder t2i 8x7x4096x16', B: 1, H: 8, Lq: 7, Lk: 4096, D: 16 },
  { label: 'SAM decoder i2t 8x4096x7x16', B: 1, H: 8, Lq: 4096, Lk: 7, D: 16 },
  { label: 'SAM decoder self 8x7x7x32', B: 1, H: 8, Lq: 7, Lk: 7, D: 32 },
];

const BINDING_LIMIT = 128 * 1024 * 1024;

function makeCase(s: Shape, variant: string, backward: boolean): BenchCase {
  const { B, H, Lq, Lk, D } = s;
  const fwdFlops = 4 * B * H * Lq * Lk * D; // q k^T and p v
  const ioBytes = 4 * B * H * (2 * Lq * D + 2 * Lk * D); // read q, k, v; write out
  let tensors: Tensor[] = [];
  return {
    name: `attention ${s.label}${backward ? ' fwd+bwd' : ''}`,
    variant,
    // backward: dq, dk, dv and dp products (2x the forward); the fused kernel also recomputes q k^T
    flops: backward ? 3 * fwdFlops : fwdFlops,
    bytes: backward ? 3 * ioBytes : ioBytes,
    setup() {
      const q = randn([B, H, Lq, D], { requiresGrad: backward });
      const k = randn([B, H, Lk, D], { requiresGrad: backward });
      const v = randn([B, H, Lk, D], { requiresGrad: backward });
      const g = backward ? randn([B, H, Lq, D]) : null;
      tensors = [q, k, v, ...(g ? [g] : [])];
      return () => {
        setKernelVariant('attention', variant);
        let o: Tensor;
        try {
          o = F.scaledDotProductAttention(q, k, v);
        } finally {
          setKernelVariant('attention', null);
        }
        if (g) {
          o.backward(g);
          for (const t of [q, k, v]) t.zeroGrad();
        }
        o.dispose();
      };
    },
    teardown() {
      for (const t of tensors) t.dispose();
      tensors = [];
    },
  };
}

export const cases: BenchCase[] = SHAPES.flatMap((s) => {
  const scoresBytes = 4 * s.B * s.H * s.Lq * s.Lk;
  const variants = kernelFamily('attention')
    .applicable({ D: s.D })
    .map((v) => v.name)
    .filter((name) => name !== 'composed' || scoresBytes <= BINDING_LIMIT);
  return [false, true].flatMap((bwd) => variants.map((v) => makeCase(s, v, bwd)));
});
