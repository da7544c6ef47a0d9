// `npm start`, the main job: checks and installs the system parts (scripts/setup.mjs), builds dist/
// when it is missing or older than src/ and shaders/, then runs the spleen demo
// (scripts/demo-spleen.mjs: a short V-Net training and segmentation of the bundled scan). Without a
// GPU device and without MEDSEG_ADAPTER it runs on llvmpipe, the faster of the two CPU adapters for
// its 3-D convolutions (about 8x SwiftShader's speed on 2 cores).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure } from './setup.mjs';
import { probe, runtimeEnv } from './system.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const r = ensure('start');
console.error(r.line);
if (!r.ok) process.exit(1);

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
await import('./demo-spleen.mjs');
