// softmax / logSoftmax over the long rows of the transformer models (768 and 3072 features, 4096
// keys), which take the workgroup-per-row kernels: forward vs the float64 reference and gradients
// vs its finite differences, along the last dim and along a middle dim (strided rows).
import { beforeAll, describe, it } from 'vitest';
import { F } from '../../src/index.js';
import { checkOp, ready } from '../helpers.js';
import { softmax } from '../reference/ops.js';
import { reductionTol } from '../tolerance.js';

beforeAll(ready);

for (const log of [false, true]) {
  const name = log ? 'logSoftmax' : 'softmax';
  const gpu = log ? F.logSoftmax : F.softmax;
  describe(`${name} over long rows`, () => {
    for (const n of [768, 3072, 4096]) {
      it(`3 rows of ${n}`, () =>
        checkOp({
          name,
          shapes: [[3, n]],
          gpu: (x) => gpu(x, -1),
          ref: (x) => softmax(x, -1, log),
          domains: [[-6, 6]],
          tol: reductionTol(n),
        }));
    }
    it('rows of 4096 with a wide value range (running max rescaling)', () =>
      checkOp({
        name,
        shapes: [[2, 4096]],
        gpu: (x) => gpu(x, -1),
        ref: (x) => softmax(x, -1, log),
        domains: [[-60, 60]],
        tol: reductionTol(4096),
        gradInputs: [],
      }));
    it('rows of 768 along a middle dim', () =>
      checkOp({
        name,
        shapes: [[2, 768, 3]],
        gpu: (x) => gpu(x, 1),
        ref: (x) => softmax(x, 1, log),
        domains: [[-6, 6]],
        tol: reductionTol(768),
      }));
  });
}
