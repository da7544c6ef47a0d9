// The package as a consumer gets it: `npm pack` of a copy of the sources (so `prepare` builds dist/
// there, as for an install from git, without touching this checkout's dist/), installed into an
// empty project (from npm's cache where it can), then
//  - the tarball holds dist/ and shaders/ but no sources, tests, data, benchmarks or source maps;
//  - Node runs a matmul through the installed 'medseg' (kernels found at run time) and its
//    'medseg/node' entry, and the `medseg` bin starts;
//  - tsc type-checks a consumer file against the published .d.ts (GPU types included) with no
//    @types of its own and skipLibCheck off;
//  - esbuild bundles the main entry for the browser with no error or warning (no node: imports),
//    and the bundle computes a matmul in Chromium on a page from localhost, checked against a CPU product.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { chromium } from 'playwright';
import { chromiumArgs, findChromium, probe } from '../scripts/system.mjs';

const root = join(__dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'medseg-package-'));
const consumer = join(tmp, 'consumer');
// npm passes its own settings to the scripts it runs as npm_* variables; a child npm would read them
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
let files: string[] = [];

beforeAll(() => {
  const repo = join(tmp, 'repo');
  mkdirSync(repo);
  for (const p of ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'src', 'shaders']) cpSync(join(root, p), join(repo, p), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(repo, 'node_modules'), 'dir');
  const out = npm(['pack', '--json', '--pack-destination', tmp], repo);
  const [info] = JSON.parse(out.slice(out.indexOf('\n[') + 1 || out.indexOf('[')));
  files = info.files.map((f: { path: string }) => f.path);
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(tmp, info.filename)], consumer);
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships the build, the kernels and the licence, and nothing else', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/gpu/index.js', 'dist/cli/main.js', 'shaders/matmul.wgsl', 'LICENSE', 'README.md', 'package.json']) expect(files).toContain(f);
    expect(files.filter((f) => /\.map$|^dist\/bench\/|^dist-bench\/|^src\/|^test\/|^data\/|^scripts\//.test(f))).toEqual([]);
  });
});

describe('installed into an empty project', () => {
  it('runs a matmul in Node through medseg and medseg/node, and the medseg bin starts', () => {
    writeFileSync(
      join(consumer, 'mm.mjs'),
      `import { init, randn } from 'medseg';
import { load, fileSource, FileSink } from 'medseg/node';
const rt = await init();
const a = randn([33, 21], { seed: 1 }), b = randn([21, 17], { seed: 2 });
const [c, av, bv] = await Promise.all([a.matmul(b).read(), a.read(), b.read()]);
let err = 0;
for (let i = 0; i < 33; i++) for (let j = 0; j < 17; j++) {
  let s = 0; for (let k = 0; k < 21; k++) s += av[i * 21 + k] * bv[k * 17 + j];
  err = Math.max(err, Math.abs(s - c[i * 17 + j]));
}
console.log(JSON.stringify({ adapter: rt.adapterName, err, from: import.meta.resolve('medseg'), node: [typeof load, typeof fileSource, typeof FileSink] }));
process.exit(0);
`,
    );
    const out = execFileSync(process.execPath, ['mm.mjs'], { cwd: consumer, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.err).toBeLessThan(1e-4);
    expect(r.from).toContain(join(consumer, 'node_modules/medseg/dist/index.js'));
    expect(r.node).toEqual(['function', 'function', 'function']);
    const help = execFileSync(join(consumer, 'node_modules/.bin/medseg'), ['--help'], { cwd: consumer, env, encoding: 'utf8' });
    expect(help).toMatch(/Usage: medseg/);
  });

  it('type-checks a consumer file against the published declarations', () => {
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { init, randn, models, weights, io, F, type Tensor } from 'medseg';
import { runtime } from 'medseg/gpu';
import { load, FileSink } from 'medseg/node';
const rt = await init();
const device: GPUDevice = runtime().device;
const x: Tensor = F.relu(randn([2, 3]));
const v: Float32Array = await x.matmul(x.transpose(0, 1)).read();
const w = await load('w.safetensors');
const net = new models.VNet({ preset: 'tiny' });
console.log(rt.adapterName, device.limits, v, w.tensors.size, net.config, weights.readSafetensors, io.readNifti, FileSink);
`,
    );
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [], skipLibCheck: false }, files: ['consumer.ts'] }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    let out = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', consumer], { cwd: consumer, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  });

  describe('bundled for the browser with esbuild', () => {
    let server: Server;
    let bundle = '';
    beforeAll(async () => {
      writeFileSync(
        join(consumer, 'browser.js'),
        `import { init, randn } from 'medseg';
window.__result = (async () => {
  try {
    const rt = await init();
    const a = randn([64, 48], { seed: 3 }), b = randn([48, 40], { seed: 4 });
    const [c, av, bv] = await Promise.all([a.matmul(b).read(), a.read(), b.read()]);
    let err = 0;
    for (let i = 0; i < 64; i++) for (let j = 0; j < 40; j++) {
      let s = 0; for (let k = 0; k < 48; k++) s += av[i * 48 + k] * bv[k * 40 + j];
      err = Math.max(err, Math.abs(s - c[i * 40 + j]));
    }
    return { adapter: rt.adapterName, err };
  } catch (e) {
    return { error: String(e && e.message || e) };
  }
})();
`,
      );
      const r = await build({ entryPoints: [join(consumer, 'browser.js')], absWorkingDir: consumer, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' });
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
      bundle = r.outputFiles[0].text;
      const page = '<!doctype html><meta charset="utf-8"><script type="module" src="/bundle.js"></script>';
      server = createServer((req, res) => {
        const js = req.url === '/bundle.js';
        res.writeHead(js || req.url === '/' ? 200 : 404, { 'content-type': js ? 'text/javascript' : 'text/html' });
        res.end(js ? bundle : req.url === '/' ? page : '');
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    }, 60_000);
    afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

    it('has no node: import', () => {
      expect(bundle).not.toMatch(/from\s*["']node:|import\(["']node:|require\(["']node:/);
    });

    it('computes a matmul in Chromium from a localhost page', async () => {
      const found = findChromium(probe({ root }));
      expect(found?.exists, 'no Chromium: run node scripts/setup.mjs test').toBe(true);
      const browser = await chromium.launch({ executablePath: found!.path, args: chromiumArgs(process.env.MEDSEG_BROWSER_GPU === '1'), headless: true });
      try {
        const page = await browser.newPage();
        const { port } = server.address() as { port: number };
        await page.goto(`http://localhost:${port}/`);
        await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, null, { timeout: 60_000 });
        const r = await page.evaluate(() => (window as unknown as { __result: Promise<{ adapter?: string; err?: number; error?: string }> }).__result);
        expect(r.error).toBeUndefined();
        expect(r.err).toBeLessThan(1e-4);
      } finally {
        await browser.close();
      }
    });
  });
});
