// A model's FLOP count from its layer shapes: while `countFlops(fn)` runs fn, the forwards of the
// convolution, linear and attention modules are wrapped to add 2 FLOPs per multiply-add of what
// their input and output shapes imply (installFlopHooks, before the model is built): a conv 2 * |out| * (Cin / groups) * kernel volume; a
// transposed conv 2 * |in| * (Cout / groups) * kernel volume; a linear 2 * |out| * in features;
// attention (TransUNet's ViT, SAM's image encoder with its decomposed relative position, SAM's
// two-way transformer) 4 * windows * Nq * Nk * width for QK^T and AV (the projections are linears,
// counted as such), plus 2 * N * (H + W) * width for the relative-position terms. Norms, softmax,
// activations and SAM's hypernetwork product are not counted (well under 1% of these models). A
// backward pass is counted as twice the forward (input and weight gradients).
import { models, nn, type Tensor } from 'medseg';

type Counter = (self: never, args: Tensor[], out: unknown) => number;

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const convFlops: Counter = (self: { weight: Tensor; options: { groups?: number } }, _args, out) =>
  2 * numel((out as Tensor).shape) * numel(self.weight.shape.slice(1));
const convTransposeFlops: Counter = (self: { weight: Tensor }, [x]) => 2 * numel(x.shape) * numel(self.weight.shape.slice(1));
const linearFlops: Counter = (self: { inFeatures: number }, _args, out) => 2 * numel((out as Tensor).shape) * self.inFeatures;
/** TransUNet's ViT attention: x [B, T, hidden] */
const vitAttention: Counter = (self: { hidden: number }, [x]) => 4 * x.shape[0] * x.shape[1] ** 2 * self.hidden;
/** SAM image encoder: x [windows, H, W, dim]; relative position adds q . R_h and q . R_w */
const samAttention: Counter = (self: { dim: number; rel_pos_h: Tensor | null }, [x]) => {
  const [B, H, W] = x.shape;
  const N = H * W;
  return 4 * B * N * N * self.dim + (self.rel_pos_h ? 2 * B * N * (H + W) * self.dim : 0);
};
/** SAM two-way transformer: q [B, Nq, E], k [B, Nk, E], projected to internalDim */
const twoWayAttention: Counter = (self: { internalDim: number }, [q, k]) => 4 * q.shape[0] * q.shape[1] * k.shape[1] * self.internalDim;

interface Hook {
  proto: { forward: (...a: Tensor[]) => unknown };
  count: Counter;
  /** hooks of one kind do not count inside each other (StdConv2d calls no super, Conv2d does) */
  kind: string;
}

function hooks(): Hook[] {
  const convBase = Object.getPrototypeOf(nn.Conv2d.prototype);
  const convTBase = Object.getPrototypeOf(nn.ConvTranspose3d.prototype);
  return [
    { proto: convBase, count: convFlops, kind: 'conv' },
    { proto: nn.StdConv2d.prototype, count: convFlops, kind: 'conv' },
    { proto: convTBase, count: convTransposeFlops, kind: 'conv' },
    { proto: nn.Linear.prototype, count: linearFlops, kind: 'linear' },
    { proto: models.TransUNetAttention.prototype, count: vitAttention, kind: 'attention' },
    { proto: models.ImageEncoderAttention.prototype, count: samAttention, kind: 'attention' },
    { proto: models.TwoWayAttention.prototype, count: twoWayAttention, kind: 'attention' },
  ] as unknown as Hook[];
}

let installed = false;
/** The FLOPs counted so far, while counting (null: not counting). */
let counting: { flops: number; active: Set<string> } | null = null;

/**
 * Wraps the counted layers' forwards (once per process). Module's constructor binds the forward it
 * finds, so models built before this call are not counted: call it before building them.
 */
export function installFlopHooks(): void {
  if (installed) return;
  installed = true;
  for (const h of hooks()) {
    const orig = h.proto.forward;
    h.proto.forward = function (this: never, ...args: Tensor[]) {
      const c = counting;
      const outer = c !== null && !c.active.has(h.kind);
      if (!outer) return orig.apply(this, args);
      c.active.add(h.kind);
      try {
        const out = orig.apply(this, args);
        c.flops += h.count(this, args, out);
        return out;
      } finally {
        c.active.delete(h.kind);
      }
    };
  }
}

/** Runs fn and returns its result with the forward FLOPs of the counted layers it ran (of models built after installFlopHooks). */
export function countFlops<T>(fn: () => T): { result: T; flops: number } {
  if (!installed) throw new Error('countFlops: call installFlopHooks() before building the model');
  const c = { flops: 0, active: new Set<string>() };
  counting = c;
  try {
    const result = fn();
    return { result, flops: c.flops };
  } finally {
    counting = null;
  }
}
