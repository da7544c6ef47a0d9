// Adapter selection in Node: each MEDSEG_ADAPTER value opens the adapter it names (in a child
// process, since a process opens one device), runs a matmul checked against a CPU product, and a
// bad value is refused. Uses the built package (npm test builds first).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const script = `
import { init, randn } from ${JSON.stringify(join(root, 'dist/index.js'))};
const rt = await init();
const a = randn([33, 21], { seed: 1 }), b = randn([21, 17], { seed: 2 });
const [c, av, bv] = await Promise.all([a.matmul(b).read(), a.read(), b.read()]);
let err = 0;
for (let i = 0; i < 33; i++) for (let j = 0; j < 17; j++) {
  let s = 0; for (let k = 0; k < 21; k++) s += av[i * 21 + k] * bv[k * 17 + j];
  err = Math.max(err, Math.abs(s - c[i * 17 + j]));
}
console.log(JSON.stringify({ adapter: rt.adapterName, err }));
process.exit(0);
`;

function run(adapter: string) {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, MEDSEG_ADAPTER: adapter, EGL_PLATFORM: 'surfaceless' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { adapter: string; err: number };
}

const hasDist = existsSync(join(root, 'dist/index.js'));

describe('MEDSEG_ADAPTER', () => {
  it('needs the built package', () => expect(hasDist, 'run npm run build first').toBe(true));
  it('swiftshader opens SwiftShader and computes correctly', () => {
    const r = run('swiftshader');
    expect(r.adapter).toMatch(/swiftshader/i);
    expect(r.err).toBeLessThan(1e-4);
  });
  // needs Debian's libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri (scripts/setup.mjs installs them)
  it('llvmpipe opens Mesa llvmpipe through OpenGL and computes correctly', () => {
    const r = run('llvmpipe');
    expect(r.adapter).toMatch(/llvmpipe/i);
    expect(r.err).toBeLessThan(1e-4);
  });
  it('an unknown adapter name is refused with the valid names', () => {
    expect(() => run('tpu')).toThrow(/gpu, swiftshader or llvmpipe/);
  });
});
