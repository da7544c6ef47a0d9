// The browser side of --compare (bundled by compare/run.ts, run in Chromium through Playwright):
// each op of ops.ts through medseg, TensorFlow.js's WebGPU backend and ONNX Runtime Web's two
// WebGPU execution providers (JSEP in the default build, the native one in onnxruntime-web/webgpu),
// all on the page's one adapter. Inputs are uploaded once; a run is timed as a batch of runs
// followed by reading the last output back (each library's own way to wait for its GPU work:
// TF.js keeps work in an unsubmitted encoder until something reads), median over batches. Every
// library's output is checked against the same float64 reference. An op a library cannot run is
// reported with its error. ONNX Runtime's native EP computes MultiHeadAttention wrongly with
// subgroups of 4 (SwiftShader), so the adapter it sees hides the subgroups feature there.
import { F, init, tensor, type Tensor } from 'medseg';
import { adapterKey, parseTunedTable, runtime, useTunedTable } from 'medseg/gpu';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import { relErr } from '../check.js';
import { singleOpModel } from './onnx.js';
import { compareOps, permute, randomData, referenceSamples, type CompareOp } from './ops.js';

export interface PeerResult {
  lib: string;
  op: string;
  coldMs?: number;
  warmMs?: number;
  maxRelErr?: number;
  error?: string;
  note?: string;
}

interface Runner {
  /** encodes or submits one run; returns a handle of its output */
  run(): Promise<unknown> | unknown;
  /** reads an output back in medseg's layout (and waits for the GPU) */
  read(out: unknown): Promise<Float32Array>;
  dispose(out: unknown): void;
  close(): void;
}

type Inputs = Record<string, Float32Array>;

/** medseg uses the table shipped for this adapter (kernels-bench/tuned/), as the benchmark does; returns a note. */
async function useShippedTable(): Promise<string> {
  await init();
  const key = adapterKey();
  const res = await fetch(`/kernels-bench/tuned/${key}.json`);
  if (!res.ok) return 'default rules (no tuned table for this adapter)';
  useTunedTable(parseTunedTable(await res.json(), `kernels-bench/tuned/${key}.json`));
  return `tuned table kernels-bench/tuned/${key}.json`;
}

async function medsegRunner(op: CompareOp, x: Inputs): Promise<Runner> {
  await init();
  const t: Record<string, Tensor> = Object.fromEntries(Object.entries(op.inputs).map(([k, s]) => [k, tensor(x[k], s)]));
  const call = (): Tensor => {
    switch (op.kind) {
      case 'matmul': return F.matmul(t.a, t.b);
      case 'conv': {
        const { stride, pad, transposed } = op.conv!;
        const nd = op.inputs.x.length - 2;
        const fn = transposed ? (nd === 3 ? F.convTranspose3d : F.convTranspose2d) : nd === 3 ? F.conv3d : F.conv2d;
        return fn(t.x, t.w, t.b, { stride, padding: pad });
      }
      case 'attention': return F.scaledDotProductAttention(t.q, t.k, t.v);
      case 'layerNorm': return F.layerNorm(t.x, [op.inputs.x[1]], t.w, t.b, 1e-5);
      case 'softmax': return F.softmax(t.x, -1);
    }
  };
  return {
    run: call,
    read: (o) => (o as Tensor).read(),
    dispose: (o) => (o as Tensor).dispose(),
    close: () => Object.values(t).forEach((v) => v.dispose()),
  };
}

async function tfjsRunner(op: CompareOp, x: Inputs): Promise<Runner> {
  if (tf.getBackend() !== 'webgpu') {
    await tf.setBackend('webgpu');
    await tf.ready();
  }
  const held: tf.Tensor[] = [];
  const up = (data: Float32Array, shape: number[]) => {
    const v = tf.tensor(data, shape);
    held.push(v);
    return v;
  };
  let call: () => tf.Tensor;
  let back: (y: Float32Array) => Float32Array = (y) => y;
  const s = op.inputs;
  switch (op.kind) {
    case 'matmul': {
      const a = up(x.a, s.a), b = up(x.b, s.b);
      call = () => tf.matMul(a, b);
      break;
    }
    case 'conv': {
      const { stride, pad, transposed } = op.conv!;
      const nd = s.x.length - 2;
      const xs = s.x, ws = s.w;
      const toLast = nd === 3 ? [0, 2, 3, 4, 1] : [0, 2, 3, 1];
      const xl = up(permute(x.x, xs, toLast), toLast.map((p) => xs[p]));
      const b = up(x.b, s.b);
      const outLast = toLast.map((p) => op.outShape[p]);
      // the bias over the last (channel) axis of a 2-d view: TF.js's WebGPU binary ops fail on rank-5 operands
      const addBias = (y: tf.Tensor) => tf.reshape(tf.add(tf.reshape(y, [-1, outLast[outLast.length - 1]]), b), outLast);
      back = (y) => permute(y, outLast, nd === 3 ? [0, 4, 1, 2, 3] : [0, 3, 1, 2]);
      if (transposed) {
        if (nd !== 3) throw new Error('tfjs: only the 3-d transposed conv is set up');
        // filter [kd, kh, kw, out, in] from [in, out, kd, kh, kw]
        const f = up(permute(x.w, ws, [2, 3, 4, 1, 0]), [ws[2], ws[3], ws[4], ws[1], ws[0]]);
        call = () => tf.tidy(() => addBias(tf.conv3dTranspose(xl as tf.Tensor5D, f as tf.Tensor5D, outLast as [number, number, number, number, number], stride, 'valid')));
      } else {
        const perm = nd === 3 ? [2, 3, 4, 1, 0] : [2, 3, 1, 0];
        const f = up(permute(x.w, ws, perm), perm.map((p) => ws[p]));
        const k = ws[2];
        if (nd === 3 && !(stride === 1 && 2 * pad === k - 1)) throw new Error('tfjs conv3d pads only valid or same');
        call = () =>
          tf.tidy(() =>
            addBias(nd === 3 ? tf.conv3d(xl as tf.Tensor5D, f as tf.Tensor5D, stride, 'same') : tf.conv2d(xl as tf.Tensor4D, f as tf.Tensor4D, stride, pad)),
          );
      }
      break;
    }
    case 'attention': {
      const q = up(x.q, s.q), k = up(x.k, s.k), v = up(x.v, s.v);
      const scale = 1 / Math.sqrt(s.q[3]);
      call = () => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale)), v));
      break;
    }
    case 'layerNorm': {
      const xx = up(x.x, s.x), w = up(x.w, s.w), b = up(x.b, s.b);
      call = () =>
        tf.tidy(() => {
          const { mean, variance } = tf.moments(xx, -1, true);
          return tf.add(tf.mul(tf.mul(tf.sub(xx, mean), tf.rsqrt(tf.add(variance, 1e-5))), w), b);
        });
      break;
    }
    case 'softmax': {
      const xx = up(x.x, s.x);
      call = () => tf.softmax(xx);
      break;
    }
  }
  return {
    run: () => call(),
    read: async (o) => back((await (o as tf.Tensor).data()) as Float32Array),
    dispose: (o) => (o as tf.Tensor).dispose(),
    close: () => held.forEach((t) => t.dispose()),
  };
}

type Ort = typeof import('onnxruntime-web');

async function ortRunner(ort: Ort, op: CompareOp, x: Inputs): Promise<Runner> {
  const o = op.onnx;
  const feedsCpu = o.inputs ? o.inputs(x) : Object.fromEntries(Object.entries(op.inputs).map(([k, s]) => [k, { data: x[k], dims: s }]));
  const model = singleOpModel(o.node, Object.fromEntries(Object.entries(feedsCpu).map(([k, v]) => [k, v.dims])), { y: o.outDims ?? op.outShape }, o.opset);
  const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer', graphOptimizationLevel: 'disabled' });
  const device = (await ort.env.webgpu.device) as GPUDevice;
  const buffers: GPUBuffer[] = [];
  const feeds: Record<string, import('onnxruntime-web').Tensor> = {};
  for (const [k, v] of Object.entries(feedsCpu)) {
    const buf = device.createBuffer({ size: Math.ceil((v.data.byteLength) / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buf, 0, v.data as Float32Array<ArrayBuffer>);
    buffers.push(buf);
    feeds[k] = ort.Tensor.fromGpuBuffer(buf, { dataType: 'float32', dims: v.dims });
  }
  return {
    run: async () => (await session.run(feeds)).y,
    read: async (t) => {
      const y = (await (t as import('onnxruntime-web').Tensor).getData()) as Float32Array;
      return o.output ? o.output(y) : y;
    },
    dispose: (t) => (t as import('onnxruntime-web').Tensor).dispose(),
    close: () => {
      buffers.forEach((b) => b.destroy());
      void session.release();
    },
  };
}

async function timeRunner(r: Runner, budget: number): Promise<{ coldMs: number; warmMs: number; out: Float32Array }> {
  let t0 = performance.now();
  let last = await r.run();
  let out = await r.read(last);
  const coldMs = performance.now() - t0;
  const per: number[] = [];
  let reps = 1;
  const start = performance.now();
  while (per.length < 3 || (performance.now() - start < budget * 1000 && per.length < 20)) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) {
      r.dispose(last);
      last = await r.run();
    }
    out = await r.read(last);
    const ms = (performance.now() - t0) / reps;
    per.push(ms);
    if (per.length === 1) reps = Math.max(1, Math.min(64, Math.round((budget * 200) / Math.max(ms, 0.01))));
  }
  r.dispose(last);
  per.sort((a, b) => a - b);
  return { coldMs, warmMs: per[Math.floor(per.length / 2)], out };
}

/** Hides 'subgroups' from what requestAdapter returns (for ONNX Runtime's native EP on subgroup-4 adapters). */
async function hideSubgroupsIfNarrow(): Promise<string | undefined> {
  const probe = await navigator.gpu.requestAdapter();
  const min = (probe?.info as { subgroupMinSize?: number } | undefined)?.subgroupMinSize;
  if (!probe?.features.has('subgroups') || !(min !== undefined && min <= 4)) return undefined;
  const orig = navigator.gpu.requestAdapter.bind(navigator.gpu);
  navigator.gpu.requestAdapter = async (o?: GPURequestAdapterOptions) => {
    const a = await orig(o);
    if (!a) return a;
    const features = new Set([...a.features].filter((f) => f !== 'subgroups'));
    Object.defineProperty(a, 'features', { value: features });
    return a;
  };
  return `subgroups hidden from it (subgroup size ${min})`;
}

export async function runCompare(budget: number, log: (s: string) => void): Promise<{ adapter: string; results: PeerResult[] }> {
  const results: PeerResult[] = [];
  const ops = compareOps();
  const data = ops.map((op) => Object.fromEntries(Object.entries(op.inputs).map(([k, s], i) => [k, randomData(s.reduce((a, b) => a * b, 1), 11 + i)])) as Inputs);
  const refs = ops.map((op, i) => referenceSamples(op, data[i]));
  const ortJsep = (await import('onnxruntime-web')) as Ort;
  ortJsep.env.wasm.numThreads = 1;
  ortJsep.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
  const libs: { lib: string; make: (op: CompareOp, x: Inputs) => Promise<Runner>; before?: () => Promise<string | undefined> }[] = [
    { lib: 'medseg', make: medsegRunner, before: useShippedTable },
    { lib: 'tfjs-webgpu', make: tfjsRunner },
    { lib: 'ort-jsep', make: (op, x) => ortRunner(ortJsep, op, x) },
    {
      lib: 'ort-webgpu',
      before: hideSubgroupsIfNarrow,
      make: async (op, x) => {
        const ort = (await import('onnxruntime-web/webgpu')) as Ort;
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
        return ortRunner(ort, op, x);
      },
    },
  ];
  for (const l of libs) {
    const note = l.before ? await l.before() : undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const res: PeerResult = { lib: l.lib, op: op.name, note };
      let r: Runner | null = null;
      try {
        r = await l.make(op, data[i]);
        const t = await timeRunner(r, budget);
        res.coldMs = t.coldMs;
        res.warmMs = t.warmMs;
        res.maxRelErr = relErr(refs[i].idx.map((f) => t.out[f]), refs[i].want);
      } catch (e) {
        res.error = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 200);
      } finally {
        try {
          r?.close();
        } catch {
          /* closing after a failure */
        }
      }
      results.push(res);
      log(`${l.lib} ${op.name}: ${res.error ? `cannot run: ${res.error}` : `warm ${res.warmMs!.toFixed(2)} ms, cold ${res.coldMs!.toFixed(0)} ms, max rel err ${res.maxRelErr!.toExponential(1)}`}`);
    }
  }
  await runtime().sync();
  const info = (await navigator.gpu.requestAdapter())?.info;
  return { adapter: `${info?.vendor ?? ''} ${info?.architecture ?? ''} ${info?.description ?? ''}`.trim(), results };
}

(globalThis as { runCompare?: typeof runCompare }).runCompare = runCompare;
