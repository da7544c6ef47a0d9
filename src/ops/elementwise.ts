// Elementwise ops with broadcasting, each forward next to its backward rule.
// Binary ops accept a number as the second operand (folded into a scalar kernel).
import { record } from '../autograd.js';
import { scope } from '../scope.js';
import { Tensor, ones, shapeStr, zeros } from '../tensor.js';
import { broadcastShapes } from './broadcast.js';
import { Binary, Ternary, Unary, ctx, elementwise, type TensorOrScalar } from './elementwise-kernel.js';
import { expand, reshape } from './shape.js';

const un = (op: number, x: Tensor, name: string, s: { alpha?: number; beta?: number } = {}) => elementwise(op, [x], s, ctx(name, x));
const bin = (op: number, a: Tensor, b: Tensor, name: string, s: { alpha?: number } = {}) => elementwise(op, [a, b], s, ctx(name, a, b));

/**
 * A differentiable binary op: the operands are expanded to their broadcast shape first (views), so
 * the sum over broadcast dims lives once, in expand's backward, and each rule below sees operands
 * and a gradient of one shape.
 */
function binary(name: string, a: Tensor, b: Tensor, forward: (a: Tensor, b: Tensor) => Tensor, rule: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => (Tensor | null)[]): Tensor {
  return scope(() => {
    const shape = broadcastShapes(a.shape, b.shape);
    const ae = a.shape.join() === shape.join() ? a : expand(a, shape);
    const be = b.shape.join() === shape.join() ? b : expand(b, shape);
    const out = forward(ae, be);
    return record(name, out, [ae, be], (g) => rule(g, ae, be, out));
  });
}

export function add(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('add', un(Unary.affine, a, 'add', { alpha: 1, beta: b }), [a], (g) => [g]);
  return binary('add', a, b, (x, y) => bin(Binary.add, x, y, 'add'), (g) => [g, g]);
}

export function sub(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('sub', un(Unary.affine, a, 'sub', { alpha: 1, beta: -b }), [a], (g) => [g]);
  return binary('sub', a, b, (x, y) => bin(Binary.sub, x, y, 'sub'), (g, x, y) => [g, y.requiresGrad ? neg(g) : null]);
}

export function mul(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return record('mul', un(Unary.affine, a, 'mul', { alpha: b, beta: 0 }), [a], (g) => [mul(g, b)]);
  return binary('mul', a, b, (x, y) => bin(Binary.mul, x, y, 'mul'), (g, x, y) => [x.requiresGrad ? mul(g, y) : null, y.requiresGrad ? mul(g, x) : null]);
}

export function div(a: Tensor, b: TensorOrScalar): Tensor {
  if (typeof b === 'number') return mul(a, 1 / b);
  // d/db (a/b) = -a/b^2 = -out/b
  return binary('div', a, b, (x, y) => bin(Binary.div, x, y, 'div'), (g, x, y, out) => [x.requiresGrad ? div(g, y) : null, y.requiresGrad ? neg(mul(g, div(out, y))) : null]);
}

export function neg(x: Tensor): Tensor {
  return record('neg', un(Unary.neg, x, 'neg'), [x], (g) => [neg(g)]);
}

export function exp(x: Tensor): Tensor {
  const out = un(Unary.exp, x, 'exp');
  return record('exp', out, [x], (g) => [mul(g, out)]);
}

export function log(x: Tensor): Tensor {
  return record('log', un(Unary.log, x, 'log'), [x], (g) => [div(g, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const out = un(Unary.sqrt, x, 'sqrt');
  return record('sqrt', out, [x], (g) => [mul(div(g, out), 0.5)]);
}

export function rsqrt(x: Tensor): Tensor {
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 out^3
  const out = un(Unary.rsqrt, x, 'rsqrt');
  return record('rsqrt', out, [x], (g) => [mul(mul(g, pow(out, 3)), -0.5)]);
}

export function pow(x: Tensor, exponent: TensorOrScalar): Tensor {
  if (typeof exponent === 'number') {
    const out = un(Unary.powScalar, x, 'pow', { alpha: exponent });
    return record('pow', out, [x], (g) => [elementwise(Binary.powScalarBackward, [x, g], { alpha: exponent }, ctx('pow backward', x))]);
  }
  // d/de x^e = log(x) * x^e
  return binary('pow', x, exponent, (a, e) => bin(Binary.pow, a, e, 'pow'), (g, a, e, out) => [
    a.requiresGrad ? elementwise(Ternary.powBackward, [a, e, g], {}, 'pow backward') : null,
    e.requiresGrad ? mul(g, mul(log(a), out)) : null,
  ]);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape);
}

export function abs(x: Tensor): Tensor {
  return record('abs', un(Unary.abs, x, 'abs'), [x], (g) => [mul(g, un(Unary.sign, x, 'abs backward'))]);
}

/** clamp(x, min, max); either bound may be null. Gradient passes where min <= x <= max. */
export function clamp(x: Tensor, min: number | null, max: number | null = null): Tensor {
  const range = { alpha: Math.max(min ?? -Infinity, -3.4e38), beta: Math.min(max ?? Infinity, 3.4e38) };
  const out = un(Unary.clamp, x, 'clamp', range);
  return record('clamp', out, [x], (g) => [mul(g, un(Unary.inRange, x, 'clamp backward', range))]);
}

/** where(cond != 0, a, b) with broadcasting. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  return scope(() => {
    const shape = broadcastShapes(cond.shape, a.shape, b.shape);
    const [ae, be] = [a, b].map((t) => (t.shape.join() === shape.join() ? t : expand(t, shape)));
    const out = elementwise(Ternary.where, [cond, ae, be], {}, ctx('where', cond, a, b));
    return record('where', out, [cond, ae, be], (g) => [
      null,
      ae.requiresGrad ? elementwise(Ternary.where, [cond, g, zerosLike(g)], {}, 'where backward') : null,
      be.requiresGrad ? elementwise(Ternary.where, [cond, zerosLike(g), g], {}, 'where backward') : null,
    ]);
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

/** sin and cos (the kernel's own series after reducing the argument to a quarter turn); d sin = cos, d cos = -sin. */
export function sin(x: Tensor): Tensor {
  return record('sin', un(Unary.sin, x, 'sin'), [x], (g) => [bin(Binary.mul, g, un(Unary.cos, x, 'sin backward'), 'sin backward')]);
}
export function cos(x: Tensor): Tensor {
  return record('cos', un(Unary.cos, x, 'cos'), [x], (g) => [bin(Binary.mul, g, un(Unary.affine, un(Unary.sin, x, 'cos backward'), 'cos backward', { alpha: -1, beta: 0 }), 'cos backward')]);
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
  if (weight.size !== 1 && (x.ndim < 2 || weight.size !== x.shape[1])) {
    throw new Error(`prelu: weight ${shapeStr(weight.shape)} must have 1 or C=${x.shape[1] ?? '?'} elements for input ${shapeStr(x.shape)}`);
  }
  return scope(() => {
    // the slopes as a tensor that broadcasts against x ([C, 1, ...] or a scalar), then expanded to x's shape
    const w = expand(reshape(weight, weight.size === 1 ? [] : [x.shape[1], ...new Array(x.ndim - 2).fill(1)]), x.shape);
    const out = bin(Binary.prelu, x, w, 'prelu');
    return record('prelu', out, [x, w], (g) => [
      x.requiresGrad ? elementwise(Ternary.preluBackwardInput, [x, w, g], {}, 'prelu backward') : null,
      w.requiresGrad ? elementwise(Ternary.preluBackwardWeight, [x, w, g], {}, 'prelu backward') : null,
    ]);
  });
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
  // mask = (a == out): a won (ties go to a)
  return binary(name, a, b, (x, y) => bin(op, x, y, name), (g, x, y, out) => {
    const m = bin(Binary.eq, x, out, `${name} backward`);
    return [
      x.requiresGrad ? elementwise(Ternary.where, [m, g, zerosLike(g)], {}, `${name} backward`) : null,
      y.requiresGrad ? elementwise(Ternary.where, [m, zerosLike(g), g], {}, `${name} backward`) : null,
    ];
  });
}

export function onesLike(x: Tensor): Tensor {
  return ones(x.shape);
}
