// softmax / logSoftmax over the long rows of the transformer models (768 and 3072 features, 4096
// keys), which take the workgroup-per-row kernels, and a row of 2.2M, which is split into chunks:
// forward vs the float64 reference and gradients vs its finite differences, along the last dim and
// along a middle dim (strided rows).
import { beforeAll, describe, it } from 'vitest';
import { F } from '../../src/index.js';
import { checkOp, expectClose, ready, upload } from '../helpers.js';
import { softmax } from '../reference/ops.js';
import { randomArr } from '../reference/ndarray.js';
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
    // Past llvmpipe's 65535 loop passes per invocation for one workgroup per row (shaders/softmax.wgsl):
    // the rows are split into chunks. Finite differences of a 2.2M-element reference are too slow, so
    // the backward is checked against its closed form on the reference output.
    it('a row of 2.2M elements, forward and backward (chunked rows)', async () => {
      const n = 2_200_000;
      const a = randomArr([1, n], 21, -6, 6);
      const cot = randomArr([1, n], 22);
      const x = upload(a, true);
      const y = gpu(x, -1);
      const want = softmax(a, -1, log);
      expectClose(await y.read(), want.data, reductionTol(n), `${name}([1, ${n}]) forward`);
      y.backward(upload(cot));
      let dot = 0;
      for (let i = 0; i < n; i++) dot += log ? cot.data[i] : cot.data[i] * want.data[i];
      const dx = want.data.map((w, i) => (log ? cot.data[i] - Math.exp(w) * dot : w * (cot.data[i] - dot)));
      expectClose(await x.grad!.read(), dx, reductionTol(n), `${name}([1, ${n}]) backward`);
    });
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
