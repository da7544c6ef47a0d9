// GPU failures other than memory (see gpu-oom.node.test.ts for that): an uncaptured GPU error (a
// shader that does not compile, an invalid call on the device) rejects the next sync point with
// the kernel and op that caused it, once, and the runtime keeps working; a lost device (simulated
// with device.destroy()) is reported, its tensors refuse to be used with "belongs to a lost device",
// a read in flight rejects, and init() opens a new device that computes correctly.
import { describe, expect, it } from 'vitest';
import { init, memoryStats, runtime, tensor, Tensor, zeros } from '../../src/index.js';

describe('uncaptured GPU errors', () => {
  it('a shader that fails to compile rejects the next sync naming the kernel and the op; the next sync is clean', async () => {
    const rt = await init();
    // parses for reflection, but assigning a u32 to an f32 is a WGSL type error the device reports
    rt.kernels.register(
      'reliability_bad',
      `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
       @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { let x: f32 = 1u; out[g.x] = x; }`,
    );
    const t = Tensor.empty([64], 'bad out');
    rt.dispatch({ kernel: 'reliability_bad', entry: 'main', buffers: { out: t.buffer }, workgroups: 1, context: 'reliabilityBadOp([64])' });
    const err = await rt.sync().then(
      () => null,
      (e: Error) => e,
    );
    expect(err, 'the compile error must not be swallowed').not.toBeNull();
    expect(err!.message).toContain('reliability_bad.wgsl');
    expect(err!.message).toContain('reliabilityBadOp([64])');
    // a browser may deliver the errors that follow from it (the invalid pipeline and command buffer)
    // a moment later, at the next sync: they name the same kernel or op (an invalid command buffer
    // names only the op, as CI once saw in Chromium); then syncs are clean
    let clean = false;
    for (let i = 0; i < 3 && !clean; i++) {
      const later = await rt.sync().then(
        () => null,
        (e: Error) => e,
      );
      if (later) expect(later.message).toMatch(/reliability_bad\.wgsl|reliabilityBadOp\(\[64\]\)/);
      clean = later === null;
    }
    expect(clean).toBe(true);
    t.dispose();
    const y = tensor([1, 2, 3]).mul(2);
    expect([...(await y.read())]).toEqual([2, 4, 6]);
  });

  it('an invalid call on the device (an uncaptured validation error) rejects the next read, then reads work', async () => {
    const rt = await init();
    const x = tensor([1, 2, 3]);
    rt.device.createBuffer({ size: 16, usage: 0 }); // usage 0 is invalid: reported only through onuncapturederror
    // a browser delivers the event asynchronously: it rejects the first read that follows its arrival
    let err: Error | null = null;
    for (let i = 0; i < 5 && !err; i++) err = await x.read().then(() => null, (e: Error) => e);
    expect(err, 'the validation error must not be swallowed').not.toBeNull();
    expect(err!.message).toMatch(/GPU error.*usage/is);
    expect([...(await x.read())]).toEqual([1, 2, 3]);
    x.dispose();
  });
});

describe('allocations over the adapter limit', () => {
  it('a tensor larger than maxBufferSize is refused at once, naming the tensor, the size and the limit', async () => {
    const rt = await init();
    const max = rt.limits.maxBufferSize;
    const n = Math.floor(max / 4) + 1024;
    expect(() => Tensor.empty([n], 'reliability huge')).toThrow(new RegExp(`reliability huge \\[${n}\\].*maxBufferSize`));
    const ok = tensor([1, 2]).add(1);
    expect([...(await ok.read())]).toEqual([2, 3]);
  });

  it('a tensor over maxStorageBufferBindingSize (or, where that equals it, maxBufferSize) is refused naming the limit and the op', async () => {
    const rt = await init();
    const bind = rt.limits.maxStorageBufferBindingSize;
    const n = Math.floor(bind / 4) + 1024;
    if (bind < rt.limits.maxBufferSize) {
      expect(() => zeros([n])).toThrow(new RegExp(`full\\(\\[${n}\\], 0\\).*over this adapter's maxStorageBufferBindingSize`));
    } else {
      expect(() => zeros([n])).toThrow(/maxBufferSize/);
    }
  });
});

describe('device loss', () => {
  it('is reported; old tensors belong to a lost device; init() gives a working runtime', async () => {
    const rt = await init();
    const a = tensor([1, 2, 3, 4]);
    const b = a.mul(2);
    expect([...(await b.read())]).toEqual([2, 4, 6, 8]);
    const inFlight = a.add(10).read(); // a read waiting on the device when it goes
    rt.device.destroy();
    await expect(inFlight).rejects.toThrow(/lost/);
    const loss = await rt.whenLost;
    expect(rt.lost).toEqual(loss);
    expect(() => runtime()).toThrow(/device was lost.*init\(\)/);
    await expect(a.read()).rejects.toThrow(/belongs to a lost device/);

    const rt2 = await init();
    expect(rt2).not.toBe(rt);
    expect(rt2.lost).toBeNull();
    expect(runtime()).toBe(rt2);
    const c = tensor([1, 2, 3, 4]);
    expect(() => c.add(a)).toThrow(/belongs to a lost device/);
    expect(() => a.mul(3)).toThrow(/belongs to a lost device/);
    const d = c.mul(c).add(1);
    expect([...(await d.read())]).toEqual([2, 5, 10, 17]);
    // disposing the old tensors is harmless and the new device's accounting is its own
    const before = memoryStats().liveBytes;
    a.dispose();
    b.dispose();
    expect(memoryStats().liveBytes).toBe(before);
    c.dispose();
    d.dispose();
  });
});
