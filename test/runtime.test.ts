// The runtime layer: device facts, the kernel registry (reflection, uniform packing, pipeline
// cache), error reporting that names kernel, op and shapes, the buffer pool, and batching.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, tensor, memoryStats, runtime, Tensor } from '../src/index.js';
import { bucketSize } from '../src/gpu/index.js';
import { ready } from './helpers.js';

beforeAll(ready);

describe('init', () => {
  it('exposes adapter info, real limits and optional features', async () => {
    const rt = await init();
    expect(await init()).toBe(rt);
    expect(rt.adapterName.length).toBeGreaterThan(3);
    expect(rt.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(rt.limits.maxComputeWorkgroupsPerDimension).toBeGreaterThanOrEqual(65535);
    for (const f of ['timestamp-query', 'shader-f16', 'subgroups']) expect(rt.features.has(f), f).toBe(rt.adapterFeatures.has(f));
  });
});

describe('kernel registry', () => {
  it('packs uniforms by field name, including vec4 arrays and scalars of each type', async () => {
    const rt = runtime();
    rt.kernels.register(
      'test_params',
      `// test kernel: copies Params fields to out
struct Params { dims: array<vec4<u32>, 2>, s: i32, f: f32, v: vec2<f32>, n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() {
  for (var i = 0u; i < 8u; i++) { out[i] = f32(params.dims[i / 4u][i % 4u]); }
  out[8] = f32(params.s); out[9] = params.f; out[10] = params.v.x; out[11] = params.v.y; out[12] = f32(params.n);
}`,
    );
    const out = Tensor.empty([13]);
    rt.dispatch({
      kernel: 'test_params',
      entry: 'main',
      params: { dims: [1, 2, 3, 4, 5, 6, 7, 8], s: -3, f: 0.25, v: [1.5, -2], n: 42 },
      buffers: { out: out.buffer },
      workgroups: 1,
    });
    expect([...(await out.read())]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, -3, 0.25, 1.5, -2, 42]);
    expect(() => rt.dispatch({ kernel: 'test_params', entry: 'main', params: { nope: 1 }, buffers: { out: out.buffer }, workgroups: 1 })).toThrow(
      /no field 'nope'/,
    );
    expect(() => rt.dispatch({ kernel: 'test_params', entry: 'main', params: { dims: [] }, buffers: { out: out.buffer }, workgroups: 1 })).toThrow(
      /Params\.s was not given/,
    );
  });

  it('caches one pipeline per (file, entry, overrides)', () => {
    const rt = runtime();
    const a = rt.pipeline('elementwise', 'unary', { OP: 1 });
    expect(rt.pipeline('elementwise', 'unary', { OP: 1 })).toBe(a);
    expect(rt.pipeline('elementwise', 'unary', { OP: 2 })).not.toBe(a);
  });

  it('a WGSL compile error surfaces at the next sync point naming the kernel and the op', async () => {
    const rt = runtime();
    rt.kernels.register(
      'test_broken',
      `struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = undefined_function(1.0); }`,
    );
    const out = Tensor.empty([1]);
    let error: Error | null = null;
    try {
      rt.dispatch({ kernel: 'test_broken', entry: 'main', params: { n: 1 }, buffers: { out: out.buffer }, workgroups: 1, context: 'brokenOp([1])' });
      await out.read();
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(/test_broken/);
    expect(error?.message).toMatch(/brokenOp\(\[1\]\)/);
    await rt.sync().catch(() => undefined); // clear anything left
    // the runtime keeps working afterwards
    expect([...(await tensor([1, 2]).add(1).read())]).toEqual([2, 3]);
  });

  it('refuses unknown kernels, entry points and bindings with their names', () => {
    const rt = runtime();
    const out = Tensor.empty([1]);
    expect(() => rt.dispatch({ kernel: 'nope', entry: 'main', buffers: {}, workgroups: 1 })).toThrow(/nope\.wgsl/);
    expect(() => rt.dispatch({ kernel: 'elementwise', entry: 'nope', buffers: {}, workgroups: 1 })).toThrow(/entry point 'nope'/);
    expect(() => rt.dispatch({ kernel: 'elementwise', entry: 'fill', params: {}, buffers: { out: out.buffer, bogus: out.buffer }, workgroups: 1 })).toThrow(
      /binding 'bogus'/,
    );
  });

  it('a binding over maxStorageBufferBindingSize is refused with the limit named', () => {
    const rt = runtime();
    const limit = rt.limits.maxStorageBufferBindingSize;
    const fake = { size: limit + 4 } as GPUBuffer;
    expect(() =>
      rt.dispatch({ kernel: 'elementwise', entry: 'fill', params: {}, buffers: { out: fake }, workgroups: 1, context: 'huge([1])' }),
    ).toThrow(/maxStorageBufferBindingSize/);
  });
});

describe('buffer pool and batching', () => {
  it('rounds sizes to four buckets per power of two', () => {
    expect(bucketSize(1)).toBe(256);
    expect(bucketSize(1000)).toBe(1024);
    expect(bucketSize(1025)).toBe(1280);
    expect(bucketSize(3000)).toBe(3072);
    for (const n of [257, 5000, 123457, 10_000_000]) {
      expect(bucketSize(n)).toBeGreaterThanOrEqual(n);
      expect(bucketSize(n)).toBeLessThanOrEqual(n * 1.25 + 4);
    }
  });
  it('reuses released buffers and encodes many ops in one submit', async () => {
    const rt = runtime();
    await rt.sync();
    const a = tensor(new Float32Array(1000).fill(1));
    const buf = a.buffer;
    a.dispose();
    const b = tensor(new Float32Array(1000).fill(2));
    expect(b.buffer).toBe(buf);
    const submits = rt.submits;
    let x = b;
    for (let i = 0; i < 20; i++) x = x.add(1);
    const v = await x.read();
    expect(v[999]).toBe(22);
    expect(rt.submits - submits).toBe(1);
  });
  it('memoryStats counts live bytes', () => {
    const s0 = memoryStats();
    const t = tensor(new Float32Array(4096));
    expect(memoryStats().liveBytes - s0.liveBytes).toBe(16384);
    t.dispose();
    expect(memoryStats().liveBytes).toBe(s0.liveBytes);
  });
});
