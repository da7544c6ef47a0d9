// `npm start`: checks and installs the system parts (scripts/setup.mjs), generates the shader
// sources, then serves the browser demo (demo/, Vite's dev server) on localhost and prints its URL:
// segmentation in the page on the visitor's GPU through WebGPU, nothing sent anywhere.
// `npm run demo:spleen` (this script with --spleen) is the command-line job instead: it builds dist/
// when it is missing or older than src/ and shaders/, then runs scripts/demo-spleen.mjs (a short
// V-Net training and segmentation of the bundled scan in Node). Without a GPU device and without
// MEDSEG_ADAPTER that runs on llvmpipe, the faster of the two CPU adapters for its 3-D
// convolutions (about 8x SwiftShader's speed on 2 cores).
//   node scripts/start.mjs [--port 5173] [--host localhost] [--check]      node scripts/start.mjs --spleen [demo-spleen options]
// --check (CI): serve, fetch the page and its entry module from the server, stop; exit 1 if either fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure } from './setup.mjs';
import { probe, runtimeEnv } from './system.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const spleen = process.argv.includes('--spleen');
const r = ensure('start');
console.error(r.line);
if (!r.ok) process.exit(1);

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
};

if (!spleen) {
  // the page imports src/ directly (Vite compiles it); only the generated shader sources are needed
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--shaders-only'], { stdio: 'inherit' });
  const { createServer } = await import('vite');
  const host = arg('--host', 'localhost');
  const server = await createServer({
    root: join(root, 'demo'),
    configFile: join(root, 'demo/vite.config.ts'),
    server: { host, port: Number(arg('--port', 5173)), strictPort: false },
    clearScreen: false,
    logLevel: 'warn',
  });
  await server.listen();
  const url = server.resolvedUrls?.local[0] ?? `http://${host}:${server.config.server.port}/`;
  console.log(`medseg demo: ${url}`);
  console.log('  open it in Chrome or Edge (WebGPU; on Linux Chrome needs --enable-unsafe-webgpu); Ctrl-C stops the server');
  console.log('  static build for any host or sub-path: npm run demo:build (writes dist-demo/); the command-line job: npm run demo:spleen');
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (process.argv.includes('--check')) {
    // CI (.ci/run): the server answers with the page and compiles its entry module, then stops
    const page = await fetch(url);
    const html = await page.text();
    const entry = [...html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g)].map((m) => m[1]).find((s) => !s.includes('@vite'));
    const mod = entry ? await fetch(new URL(entry, url)) : null;
    const ok = page.ok && !!mod?.ok;
    console.log(`medseg demo check: page ${page.status}, entry ${entry ?? 'missing'} ${mod?.status ?? ''}`.trim());
    await server.close();
    process.exit(ok ? 0 : 1);
  }
} else {
  const add = runtimeEnv(probe({ root }), process.env, { preferLlvmpipe: true });
  Object.assign(process.env, add);
  if (add.XDG_RUNTIME_DIR) mkdirSync(add.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  if (add.MEDSEG_ADAPTER) console.error('medseg: no GPU device found; running on llvmpipe (set MEDSEG_ADAPTER=gpu|swiftshader|llvmpipe to choose)');

  const newest = (dir) =>
    readdirSync(dir, { withFileTypes: true }).reduce((t, e) => Math.max(t, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs), 0);
  const mtime = (p) => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return 0;
    }
  };
  if (mtime(join(root, 'dist/index.js')) < Math.max(newest(join(root, 'src')), newest(join(root, 'shaders')))) {
    console.error('medseg: building dist/');
    execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
  }
  process.argv = process.argv.filter((a) => a !== '--spleen');
  await import('./demo-spleen.mjs');
}
