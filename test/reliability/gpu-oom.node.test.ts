// Out of GPU memory, for real: a child process (test/reliability/oom-child.ts, bundled with esbuild)
// caps its own address space with prlimit after start-up, so the CPU adapter's driver refuses a
// 1 GiB buffer (vkAllocateMemory: VK_ERROR_OUT_OF_DEVICE_MEMORY on SwiftShader). Checks that the
// refusal becomes an OutOfMemoryError at the next sync naming the op and the bytes asked for, that
// the next call works and computes the right values, that the memory peak leaves the refused buffer out, and that an allocation refused only because
// idle pooled buffers held the memory succeeds on retryOnOutOfMemory's one retry.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';

const root = join(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-oom-'));
const script = join(tmp, 'oom-child.mjs');

beforeAll(async () => {
  symlinkSync(join(root, 'node_modules'), join(tmp, 'node_modules'), 'dir');
  await build({ entryPoints: [join(__dirname, 'oom-child.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: script, logLevel: 'error' });
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('GPU out of memory', () => {
  it('a refused allocation is an OutOfMemoryError naming the op and bytes; the next call works; an idle-pool refusal succeeds on retry', () => {
    // one malloc arena: glibc reserves 64 MiB of address space for each new thread's arena, which
    // moved the capped process's VmSize by 64 MiB at random and made the retry's headroom flaky
    const r = spawnSync(process.execPath, [script], { cwd: tmp, env: { ...process.env, MALLOC_ARENA_MAX: '1' }, encoding: 'utf8', timeout: 240_000 });
    const steps = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .map((o) => [o.step, o]),
    );
    console.log(r.stdout.trim());
    expect(r.status, `child exit status; stderr:\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(steps.capped).toBeDefined();
    const e1 = steps.oversized.error;
    expect(e1, 'the oversized allocation must fail').not.toBeNull();
    expect(e1.isOom).toBe(true);
    expect(e1.bytes).toBe(steps.oversized.asked);
    expect(e1.op).toContain('reliability big');
    expect(e1.message).toMatch(/out of GPU memory/);
    expect(e1.message).toContain(`(${steps.oversized.asked} bytes)`);
    expect(e1.message).toContain('reliability big');
    expect(steps.oversized.peakAfter, 'the peak counts only buffers that exist, not the refused one').toBe(steps.oversized.peakBefore);
    expect(steps.oversized.liveAfter).toBe(steps.oversized.liveBefore);
    expect(steps.after.values).toEqual([4, 7, 10, 13]);
    expect(steps.retry.idleBefore).toBe(3 * 64 * 2 ** 20 + 512);
    expect(steps.retry.error, 'the retried allocation fits once the idle buffers are released').toBeNull();
    expect(steps.retry.attempts).toBe(2);
    expect(steps.retry.idleAfter).toBe(0);
  });
});
