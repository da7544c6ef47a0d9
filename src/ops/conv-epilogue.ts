// The conv kernels' fused epilogue, y = act(c + bias) + r (or act(c + bias + r) with
// residualBeforeActivation), for every launcher (shaders/_conv_epilogue.wgsl): its checked
// arguments, the uniforms and bindings the kernels read, and its backward. When a gradient is
// needed the kernel also stores the pre-activation q; dq = act'(q) * dy, the residual gets dy (or
// dq with residualBeforeActivation), the prelu slope gets sum(q < 0 ? q * dy : 0), and dq flows
// into the conv's own backward.
import { noGrad } from '../autograd.js';
import { Tensor, shapeStr } from '../tensor.js';
import { Binary, Ternary, elementwise } from './elementwise-kernel.js';
import { contiguous, denseAt0, reshape, sumToShape } from './shape.js';

export type ConvActivation = 'relu' | 'elu' | 'prelu' | 'gelu';

/** What the conv kernel applies to its result before storing it. */
export interface ConvEpilogue {
  activation?: ConvActivation | null;
  /** elu's alpha (default 1) */
  alpha?: number;
  /** prelu's weight: one slope or one per output channel */
  preluWeight?: Tensor | null;
  /** added to the output (same shape as the output) */
  residual?: Tensor | null;
  /** add the residual before the activation (act(conv + b + r)) instead of after (act(conv + b) + r) */
  residualBeforeActivation?: boolean;
}

const ACT = { none: 0, relu: 1, elu: 2, prelu: 3, gelu: 4 } as const;

/** The epilogue as the kernels take it: dense operands and the activation's code. */
export interface EpilogueArgs {
  bias: Tensor | null;
  act: number;
  alpha: number;
  prelu: Tensor | null;
  /** dense from element 0 (the kernels index it as the output) */
  residual: Tensor | null;
  resFirst: boolean;
  /** where the kernel stores the pre-activation q (a gradient is needed and there is an activation) */
  pre: Tensor | null;
}

/** Checks the epilogue of a conv with output `outShape` and makes its kernel arguments. */
export function epilogueArgs(op: string, ep: ConvEpilogue, outShape: readonly number[], bias: Tensor | null, grad: boolean): EpilogueArgs {
  const act = ep.activation ? ACT[ep.activation] : 0;
  if (act === undefined) throw new Error(`${op}: unknown activation '${ep.activation}'`);
  const C = outShape[1];
  let prelu: Tensor | null = null;
  if (act === ACT.prelu) {
    if (!ep.preluWeight) throw new Error(`${op}: activation 'prelu' needs preluWeight`);
    if (ep.preluWeight.size !== 1 && ep.preluWeight.size !== C) {
      throw new Error(`${op}: preluWeight ${shapeStr(ep.preluWeight.shape)} must have 1 or ${C} elements`);
    }
    const w = ep.preluWeight;
    prelu = noGrad(() => contiguous(w));
  }
  let residual: Tensor | null = null;
  if (ep.residual) {
    if (ep.residual.shape.join() !== outShape.join()) {
      throw new Error(`${op}: residual ${shapeStr(ep.residual.shape)} must have the output's shape ${shapeStr(outShape)}`);
    }
    const r = ep.residual;
    residual = noGrad(() => denseAt0(r));
  }
  const pre = grad && act !== 0 ? Tensor.empty(outShape, `${op} pre-activation`) : null;
  return { bias, act, alpha: ep.alpha ?? 1, prelu, residual, resFirst: !!ep.residualBeforeActivation, pre };
}

/** The override constants of the epilogue. */
export function epilogueOverrides(ep: EpilogueArgs | undefined): Record<string, number> {
  return { ACT: ep?.act ?? 0, RES_FIRST: ep?.resFirst ? 1 : 0 };
}

/** The epilogue's uniforms (Params fields shared by every conv kernel that ends in finish()). */
export function epilogueParams(ep: EpilogueArgs | undefined): Record<string, number> {
  return {
    bias_offset: ep?.bias ? ep.bias.offset : 0,
    has_bias: ep?.bias ? 1 : 0,
    has_residual: ep?.residual ? 1 : 0,
    prelu_per_channel: ep?.prelu && ep.prelu.size > 1 ? 1 : 0,
    prelu_offset: ep?.prelu ? ep.prelu.offset : 0,
    store_pre: ep?.pre ? 1 : 0,
    alpha: ep?.alpha ?? 1,
  };
}

/** The epilogue's bindings, with `out` the result; an unused one binds the runtime's placeholder. */
export function epilogueBuffers(ep: EpilogueArgs | undefined, out: Tensor): Record<string, GPUBuffer | null> {
  return {
    bias: ep?.bias?.buffer ?? null,
    prelu_w: ep?.prelu?.buffer ?? null,
    residual: ep?.residual?.buffer ?? null,
    out: out.buffer,
    pre: ep?.pre?.buffer ?? null,
  };
}

/**
 * The backward of the epilogue: from dy to dq (the gradient of conv + bias), the residual's and
 * the prelu weight's gradients. C is the output's channel count.
 */
export function epilogueBackward(g: Tensor, ep: EpilogueArgs, C: number): { dq: Tensor; dres: Tensor | null; dprelu: Tensor | null } {
  let dq = g;
  let dprelu: Tensor | null = null;
  const q = ep.pre;
  if (q) {
    switch (ep.act) {
      case ACT.relu:
        dq = elementwise(Binary.reluBackward, [q, g], {}, 'conv relu backward');
        break;
      case ACT.gelu:
        dq = elementwise(Binary.geluBackward, [q, g], {}, 'conv gelu backward');
        break;
      case ACT.elu:
        dq = elementwise(Binary.eluBackward, [q, g], { alpha: ep.alpha }, 'conv elu backward');
        break;
      case ACT.prelu: {
        const w = ep.prelu!;
        const wb = w.size === 1 ? reshape(w, []) : reshape(w, [C, ...new Array<number>(q.ndim - 2).fill(1)]);
        dq = elementwise(Ternary.preluBackwardInput, [q, wb, g], {}, 'conv prelu backward');
        dprelu = reshape(sumToShape(elementwise(Ternary.preluBackwardWeight, [q, wb, g], {}, 'conv prelu backward'), wb.shape), w.shape);
        break;
      }
    }
  }
  const dres = ep.residual ? (ep.resFirst ? dq : g) : null;
  return { dq, dres, dprelu };
}
