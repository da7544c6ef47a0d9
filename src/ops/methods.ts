// Tensor methods that mirror the functional ops (x.mul(y).sum().backward()), installed on the
// prototype here so tensor.ts stays free of op imports.
import { backward, type BackwardOptions } from '../autograd.js';
import { Tensor, provideOps } from '../tensor.js';
import type { TensorOrScalar } from './elementwise-kernel.js';
import * as ew from './elementwise.js';
import * as red from './reduce.js';
import * as sh from './shape.js';
import * as sm from './softmax.js';
import * as mm from './matmul.js';

declare module '../tensor.js' {
  interface Tensor {
    add(o: TensorOrScalar): Tensor;
    sub(o: TensorOrScalar): Tensor;
    mul(o: TensorOrScalar): Tensor;
    div(o: TensorOrScalar): Tensor;
    pow(e: TensorOrScalar): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    clamp(min: number | null, max?: number | null): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    relu(): Tensor;
    gelu(): Tensor;
    sum(dim?: red.Dims, keepdim?: boolean): Tensor;
    mean(dim?: red.Dims, keepdim?: boolean): Tensor;
    max(dim?: red.Dims, keepdim?: boolean): Tensor;
    min(dim?: red.Dims, keepdim?: boolean): Tensor;
    var(dim?: red.Dims, options?: red.VarOptions): Tensor;
    argmax(dim?: number | null, keepdim?: boolean): Tensor;
    argmin(dim?: number | null, keepdim?: boolean): Tensor;
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    matmul(o: Tensor): Tensor;
    reshape(...shape: number[] | [readonly number[]]): Tensor;
    permute(...dims: number[] | [readonly number[]]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    expand(...shape: number[] | [readonly number[]]): Tensor;
    unsqueeze(dim: number): Tensor;
    squeeze(dim?: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    contiguous(): Tensor;
    clone(): Tensor;
    /** A handle on the same data with no gradient history. */
    detach(): Tensor;
    onesLike(): Tensor;
    zerosLike(): Tensor;
    backward(gradient?: Tensor, options?: BackwardOptions): void;
    /** Drops .grad (set to null, as PyTorch's set_to_none). */
    zeroGrad(): void;
    /** Sets requiresGrad in place and returns this. */
    requiresGrad_(on?: boolean): Tensor;
  }
}

provideOps({ add: ew.add, contiguous: sh.contiguous });

const shapeArgs = (args: unknown[]): number[] => (Array.isArray(args[0]) ? [...(args[0] as number[])] : (args as number[]));

const P = Tensor.prototype;
P.add = function (o) { return ew.add(this, o); };
P.sub = function (o) { return ew.sub(this, o); };
P.mul = function (o) { return ew.mul(this, o); };
P.div = function (o) { return ew.div(this, o); };
P.pow = function (e) { return ew.pow(this, e); };
P.neg = function () { return ew.neg(this); };
P.exp = function () { return ew.exp(this); };
P.log = function () { return ew.log(this); };
P.sqrt = function () { return ew.sqrt(this); };
P.rsqrt = function () { return ew.rsqrt(this); };
P.abs = function () { return ew.abs(this); };
P.clamp = function (min, max = null) { return ew.clamp(this, min, max); };
P.sigmoid = function () { return ew.sigmoid(this); };
P.tanh = function () { return ew.tanh(this); };
P.relu = function () { return ew.relu(this); };
P.gelu = function () { return ew.gelu(this); };
P.sum = function (dim, keepdim) { return red.sum(this, dim, keepdim); };
P.mean = function (dim, keepdim) { return red.mean(this, dim, keepdim); };
P.max = function (dim, keepdim) { return red.max(this, dim, keepdim); };
P.min = function (dim, keepdim) { return red.min(this, dim, keepdim); };
P.var = function (dim, options) { return red.variance(this, dim, options); };
P.argmax = function (dim, keepdim) { return red.argmax(this, dim, keepdim); };
P.argmin = function (dim, keepdim) { return red.argmin(this, dim, keepdim); };
P.softmax = function (dim) { return sm.softmax(this, dim); };
P.logSoftmax = function (dim) { return sm.logSoftmax(this, dim); };
P.matmul = function (o) { return mm.matmul(this, o); };
P.reshape = function (...s) { return sh.reshape(this, shapeArgs(s)); };
P.permute = function (...d) { return sh.permute(this, shapeArgs(d)); };
P.transpose = function (a, b) { return sh.transpose(this, a, b); };
P.expand = function (...s) { return sh.expand(this, shapeArgs(s)); };
P.unsqueeze = function (d) { return sh.unsqueeze(this, d); };
P.squeeze = function (d) { return sh.squeeze(this, d); };
P.flatten = function (a, b) { return sh.flatten(this, a, b); };
P.narrow = function (d, s, l) { return sh.narrow(this, d, s, l); };
P.contiguous = function () { return sh.contiguous(this); };
P.clone = function () { return sh.clone(this); };
P.detach = function () { return this.view(this.shape, this.strides); };
P.onesLike = function () { return ew.onesLike(this); };
P.zerosLike = function () { return ew.zerosLike(this); };
P.backward = function (gradient, options) { backward(this, gradient, options); };
P.zeroGrad = function () { this.grad?.dispose(); this.grad = null; };
P.requiresGrad_ = function (on = true) { this.requiresGrad = on; return this; };
