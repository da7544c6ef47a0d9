// Reverse-mode autograd. An op whose inputs require grad records a GradNode on its output: the
// inputs and a backward rule mapping the output's gradient to one gradient per input (the rules sit
// beside their forwards in src/ops/). backward() walks the graph in reverse topological order,
// accumulates into leaf `.grad`, and frees intermediate gradients as soon as they are consumed.
// Each rule runs inside a scope (src/scope.ts), so its temporaries are freed when it returns; the
// tensors a rule reads besides its inputs are listed as `saved` when the node is recorded, which
// keeps them alive (whatever scope made them) until backward has run through the node.
import { Tensor, backwardEnded, backwardStarted, ones, requireOps, shapeStr } from './tensor.js';
import { keep, scope } from './scope.js';

export interface GradNode {
  op: string;
  inputs: readonly Tensor[];
  /** Returns one gradient per input (null where an input needs none). Must not dispose `grad`. */
  backward: (grad: Tensor) => (Tensor | null)[];
  /** tensors the rule reads besides its inputs (kept alive until the node is freed) */
  saved: readonly Tensor[];
  /** set once backward has run through this node without retainGraph */
  freed?: boolean;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording gradients (like torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      throw new Error('noGrad(fn): fn must be synchronous; wrap only the tensor ops, not awaits');
    }
    return r;
  } finally {
    gradEnabled = prev;
  }
}

/** Enables or disables recording; returns the previous state. */
export function setGradEnabled(on: boolean): boolean {
  const prev = gradEnabled;
  gradEnabled = on;
  return prev;
}

export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

/**
 * Attaches a backward rule to `out` if any input requires grad, and returns `out`. `saved` lists
 * the tensors the rule reads besides its inputs (made by the forward: dense copies, statistics,
 * pre-activations); the node owns them: they are freed once backward has run through it, or at
 * once when nothing is recorded. Inputs stay alive until then too (Tensor.graphUses).
 */
export function record(op: string, out: Tensor, inputs: (Tensor | null | undefined)[], backward: GradNode['backward'], saved: readonly (Tensor | null | undefined)[] = []): Tensor {
  // never take ownership of an input or of the output itself
  const owned = [...new Set(saved)].filter((t): t is Tensor => !!t && t !== out && !inputs.includes(t));
  if (!needsGrad(...inputs)) {
    for (const t of owned) t.dispose();
    return out;
  }
  out.requiresGrad = true;
  out.gradFn = { op, inputs: inputs.map((t) => t ?? (null as unknown as Tensor)), backward, saved: owned };
  for (const t of inputs) if (t) t.graphUses++;
  for (const t of owned) {
    t.graphUses++;
    t.dispose(); // deferred: freed when the node lets go of it
  }
  return out;
}

export interface BackwardOptions {
  /** Keep the graph so backward can run through it again. */
  retainGraph?: boolean;
}

function addInto(a: Tensor, b: Tensor): Tensor {
  return requireOps().add(a, b);
}

/** Computes gradients of `root` w.r.t. every leaf that requires grad. */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward(): the tensor does not require grad (no input of its graph has requiresGrad)');
  if (!gradient && root.size !== 1) {
    throw new Error(`backward(): a gradient is needed for a non-scalar output ${shapeStr(root.shape)} (pass one, as in PyTorch)`);
  }
  if (gradient && gradient.shape.join() !== root.shape.join()) {
    throw new Error(`backward(): gradient shape ${shapeStr(gradient.shape)} does not match output ${shapeStr(root.shape)}`);
  }
  const prev = setGradEnabled(false);
  backwardStarted();
  try {
    // Reverse topological order by iterative DFS.
    const order: Tensor[] = [];
    const seen = new Set<Tensor>();
    const stack: [Tensor, number][] = [[root, 0]];
    seen.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [t, i] = top;
      const ins = t.gradFn?.inputs ?? [];
      if (i < ins.length) {
        top[1]++;
        const c = ins[i];
        if (c && c.requiresGrad && !seen.has(c)) {
          seen.add(c);
          stack.push([c, 0]);
        }
      } else {
        order.push(t);
        stack.pop();
      }
    }
    order.reverse();

    const user = gradient ?? ones(root.shape);
    const grads = new Map<Tensor, Tensor>([[root, user]]);
    const callerOwned = new Set<Tensor>(gradient ? [gradient] : []);
    const release = (g: Tensor) => {
      if (!callerOwned.has(g)) g.dispose();
    };

    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.gradFn) {
        // Leaf: accumulate into .grad (a fresh handle, so .grad never aliases a handle we free).
        const own = callerOwned.has(g) ? g.view(g.shape, g.strides) : g;
        if (t.grad) {
          const sum = addInto(t.grad, own);
          t.grad.dispose();
          if (own !== g || !callerOwned.has(g)) own.dispose();
          t.grad = keep(sum);
        } else t.grad = keep(own);
        continue;
      }
      const node = t.gradFn;
      const ins = scope(() => node.backward(g));
      if (ins.length !== node.inputs.length) throw new Error(`internal: backward of ${node.op} returned ${ins.length} grads for ${node.inputs.length} inputs`);
      node.inputs.forEach((input, k) => {
        const gi = ins[k];
        if (!gi || !input || !input.requiresGrad) {
          if (gi && gi !== g) gi.dispose();
          return;
        }
        if (gi.shape.join() !== input.shape.join()) {
          throw new Error(`internal: backward of ${node.op} gave a ${shapeStr(gi.shape)} grad for a ${shapeStr(input.shape)} input`);
        }
        const prevG = grads.get(input);
        if (prevG) {
          grads.set(input, addInto(prevG, gi));
          release(prevG);
          if (gi !== g) release(gi);
        } else grads.set(input, gi === g ? g.view(g.shape, g.strides) : gi);
      });
      release(g);
      if (!options.retainGraph) {
        t.gradFn = {
          op: node.op,
          inputs: [],
          saved: [],
          freed: true,
          backward: () => {
            throw new Error(`backward(): the graph through ${node.op} was already freed; pass { retainGraph: true } to backward twice`);
          },
        };
        for (const input of [...node.inputs, ...node.saved]) {
          if (!input) continue;
          input.graphUses--;
          input.freeIfUnused();
        }
        t.freeIfUnused();
      }
    }
  } finally {
    setGradEnabled(prev);
    backwardEnded();
  }
}
