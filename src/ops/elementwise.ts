// Elementwise ops with broadcasting, each forward next to its backward rule.
// Binary ops accept a number as the second operand (folded into a scalar kernel).
import { noGrad, record } from '../autograd.js';
import { Tensor, ones, shapeStr, zeros } from '../tensor.js';
import { Binary, Ternary, Unary, ctx, elementwise, type TensorOrScalar } from './dispatch.js';
import { sumToShape, reshape } from './shape.js';

const un = (op: number, x: Tensor, name: string, s: { alpha?: number; beta?: number } = {}) => elementwise(op, [x], s, ctx(name, x));
const bin = (op: number, a: Tensor, b: Tensor, name: string, s: { alpha?: number } = {}) => elementwise(op, [a, b], s, ctx(name, a, b));

/** Reduces each gradient to its input's shape (broadcast backward). */
function reduced(g: Tensor, input: Tensor): Tensor {
  return sumToShape(g, input.shape);
}

export function add(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('add', un(Unary.affine, a, 'add', { alpha: 1, beta: b }), [a], (g) => [g]);
  const out = bin(Binary.add, a, b, 'add');
  return record('add', out, [a, b], (g) => [a.requiresGrad ? reduced(g, a) : null, b.requiresGrad ? reduced(g, b) : null]);
}

export function sub(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('sub', un(Unary.affine, a, 'sub', { alpha: 1, beta: -b }), [a], (g) => [g]);
  const out = bin(Binary.sub, a, b, 'sub');
  return record('sub', out, [a, b], (g) => {
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      const n = neg(g);
      gb = reduced(n, b);
      if (gb !== n) n.dispose();
    }
    return [a.requiresGrad ? reduced(g, a) : null, gb];
  });
}

export function mul(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('mul', un(Unary.affine, a, 'mul', { alpha: b, beta: 0 }), [a], (g) => [mul(g, b)]);
  const out = bin(Binary.mul, a, b, 'mul');
  return record('mul', out, [a, b], (g) => [a.requiresGrad ? mulReduced(g, b, a) : null, b.requiresGrad ? mulReduced(g, a, b) : null]);
}

/** sumToShape(g * other, like.shape), freeing the intermediate. */
function mulReduced(g: Tensor, other: Tensor, like: Tensor): Tensor {
  const p = bin(Binary.mul, g, other, 'mul backward');
  const r = reduced(p, like);
  if (r !== p) p.dispose();
  return r;
}

export function div(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return mul(a, 1 / b);
  const out = bin(Binary.div, a, b, 'div');
  return record('div', out, [a, b], (g) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      const q = bin(Binary.div, g, b, 'div backward');
      ga = reduced(q, a);
      if (ga !== q) q.dispose();
    }
    if (b.requiresGrad) {
      // d/db (a/b) = -a/b^2 = -out/b
      const q = bin(Binary.div, out, b, 'div backward');
      const t = elementwise(Binary.mul, [g, q], {}, 'div backward');
      q.dispose();
      const n = un(Unary.neg, t, 'div backward');
      t.dispose();
      gb = reduced(n, b);
      if (gb !== n) n.dispose();
    }
    return [ga, gb];
  });
}

export function neg(x: Tensor): Tensor {
  return record('neg', un(Unary.neg, x, 'neg'), [x], (g) => [un(Unary.neg, g, 'neg backward')]);
}

export function exp(x: Tensor): Tensor {
  const out = un(Unary.exp, x, 'exp');
  return record('exp', out, [x], (g) => [bin(Binary.mul, g, out, 'exp backward')]);
}

export function log(x: Tensor): Tensor {
  return record('log', un(Unary.log, x, 'log'), [x], (g) => [bin(Binary.div, g, x, 'log backward')]);
}

export function sqrt(x: Tensor): Tensor {
  const out = un(Unary.sqrt, x, 'sqrt');
  return record('sqrt', out, [x], (g) => {
    const t = bin(Binary.div, g, out, 'sqrt backward');
    const r = un(Unary.affine, t, 'sqrt backward', { alpha: 0.5 });
    t.dispose();
    return [r];
  });
}

export function rsqrt(x: Tensor): Tensor {
  const out = un(Unary.rsqrt, x, 'rsqrt');
  return record('rsqrt', out, [x], (g) => {
    // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 out^3
    const c = un(Unary.powScalar, out, 'rsqrt backward', { alpha: 3 });
    const t = bin(Binary.mul, g, c, 'rsqrt backward');
    c.dispose();
    const r = un(Unary.affine, t, 'rsqrt backward', { alpha: -0.5 });
    t.dispose();
    return [r];
  });
}

export function pow(x: Tensor, exponent: TensorOrScalar): Tensor {
  if (typeof exponent === 'number') {
    const out = un(Unary.powScalar, x, 'pow', { alpha: exponent });
    return record('pow', out, [x], (g) => [elementwise(Binary.powScalarBackward, [x, g], { alpha: exponent }, ctx('pow backward', x))]);
  }
  const out = bin(Binary.pow, x, exponent, 'pow');
  return record('pow', out, [x, exponent], (g) => {
    let gx: Tensor | null = null;
    let ge: Tensor | null = null;
    if (x.requiresGrad) {
      const t = elementwise(Ternary.powBackward, [x, exponent, g], {}, 'pow backward');
      gx = reduced(t, x);
      if (gx !== t) t.dispose();
    }
    if (exponent.requiresGrad) {
      const l = un(Unary.log, x, 'pow backward');
      const t = bin(Binary.mul, l, out, 'pow backward');
      l.dispose();
      ge = mulReduced(g, t, exponent);
      t.dispose();
    }
    return [gx, ge];
  });
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape);
}

export function abs(x: Tensor): Tensor {
  return record('abs', un(Unary.abs, x, 'abs'), [x], (g) => {
    const s = un(Unary.sign, x, 'abs backward');
    const r = bin(Binary.mul, g, s, 'abs backward');
    s.dispose();
    return [r];
  });
}

/** clamp(x, min, max); either bound may be null. Gradient passes where min <= x <= max. */
export function clamp(x: Tensor, min: number | null, max: number | null = null): Tensor {
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  const out = un(Unary.clamp, x, 'clamp', { alpha: Math.max(lo, -3.4e38), beta: Math.min(hi, 3.4e38) });
  return record('clamp', out, [x], (g) => {
    const m = un(Unary.inRange, x, 'clamp backward', { alpha: Math.max(lo, -3.4e38), beta: Math.min(hi, 3.4e38) });
    const r = bin(Binary.mul, g, m, 'clamp backward');
    m.dispose();
    return [r];
  });
}

/** where(cond != 0, a, b) with broadcasting. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const out = elementwise(Ternary.where, [cond, a, b], {}, ctx('where', cond, a, b));
  return record('where', out, [cond, a, b], (g) => {
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      const z = zerosLike(g);
      const t = elementwise(Ternary.where, [cond, g, z], {}, 'where backward');
      z.dispose();
      ga = reduced(t, a);
      if (ga !== t) t.dispose();
    }
    if (b.requiresGrad) {
      const z = zerosLike(g);
      const t = elementwise(Ternary.where, [cond, z, g], {}, 'where backward');
      z.dispose();
      gb = reduced(t, b);
      if (gb !== t) t.dispose();
    }
    return [null, ga, gb];
  });
}

export function sigmoid(x: Tensor): Tensor {
  const out = un(Unary.sigmoid, x, 'sigmoid');
  return record('sigmoid', out, [x], (g) => [bin(Binary.sigmoidBackward, out, g, 'sigmoid backward')]);
}

export function tanh(x: Tensor): Tensor {
  const out = un(Unary.tanh, x, 'tanh');
  return record('tanh', out, [x], (g) => [bin(Binary.tanhBackward, out, g, 'tanh backward')]);
}

export function relu(x: Tensor): Tensor {
  return record('relu', un(Unary.relu, x, 'relu'), [x], (g) => [bin(Binary.reluBackward, x, g, 'relu backward')]);
}

/** GELU, exact (erf) form as torch's default. */
export function gelu(x: Tensor): Tensor {
  return record('gelu', un(Unary.gelu, x, 'gelu'), [x], (g) => [bin(Binary.geluBackward, x, g, 'gelu backward')]);
}

export function elu(x: Tensor, alpha = 1): Tensor {
  return record('elu', un(Unary.elu, x, 'elu', { alpha }), [x], (g) => [elementwise(Binary.eluBackward, [x, g], { alpha }, 'elu backward')]);
}

/** PReLU with PyTorch's weight layout: one slope, or one per channel (dim 1). */
export function prelu(x: Tensor, weight: Tensor): Tensor {
  let w = weight;
  if (weight.size !== 1) {
    if (x.ndim < 2 || weight.size !== x.shape[1]) {
      throw new Error(`prelu: weight ${shapeStr(weight.shape)} must have 1 or C=${x.shape[1] ?? '?'} elements for input ${shapeStr(x.shape)}`);
    }
    w = noGrad(() => reshape(weight, [x.shape[1], ...new Array(x.ndim - 2).fill(1)]));
  } else w = noGrad(() => reshape(weight, []));
  const out = bin(Binary.prelu, x, w, 'prelu');
  return record('prelu', out, [x, weight], (g) => {
    const gx = x.requiresGrad ? elementwise(Ternary.preluBackwardInput, [x, w, g], {}, 'prelu backward') : null;
    let gw: Tensor | null = null;
    if (weight.requiresGrad) {
      const t = elementwise(Ternary.preluBackwardWeight, [x, w, g], {}, 'prelu backward');
      const r = sumToShape(t, w.shape);
      gw = reshape(r, weight.shape);
      if (r !== t) t.dispose();
      r.dispose();
    }
    return [gx, gw];
  }, () => w.dispose());
}

/** Comparison masks (1 where true, else 0); not differentiable. */
export function gt(a: Tensor, b: TensorOrScalar): Tensor {
  return typeof b === 'number' ? un(Unary.gtScalar, a, 'gt', { alpha: b }) : bin(Binary.gt, a, b, 'gt');
}
export function lt(a: Tensor, b: TensorOrScalar): Tensor {
  return typeof b === 'number' ? un(Unary.ltScalar, a, 'lt', { alpha: b }) : bin(Binary.lt, a, b, 'lt');
}
export function eq(a: Tensor, b: TensorOrScalar): Tensor {
  return typeof b === 'number' ? un(Unary.eqScalar, a, 'eq', { alpha: b }) : bin(Binary.eq, a, b, 'eq');
}

/** Elementwise max/min of two tensors; gradient goes to the larger (smaller) operand, to `a` on ties. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return minmax(a, b, Binary.maximum, 'maximum');
}
export function minimum(a: Tensor, b: Tensor): Tensor {
  return minmax(a, b, Binary.minimum, 'minimum');
}
function minmax(a: Tensor, b: Tensor, op: number, name: string): Tensor {
  const out = bin(op, a, b, name);
  return record(name, out, [a, b], (g) => {
    // mask = (a == out): a won (ties go to a)
    const m = bin(Binary.eq, a, out, `${name} backward`);
    const z = zerosLike(g);
    const ga = a.requiresGrad ? elementwise(Ternary.where, [m, g, z], {}, `${name} backward`) : null;
    const gb = b.requiresGrad ? elementwise(Ternary.where, [m, z, g], {}, `${name} backward`) : null;
    m.dispose();
    z.dispose();
    const ra = ga && reduced(ga, a);
    const rb = gb && reduced(gb, b);
    if (ga && ra !== ga) ga.dispose();
    if (gb && rb !== gb) gb.dispose();
    return [ra, rb];
  });
}

export function onesLike(x: Tensor): Tensor {
  return ones(x.shape);
}
