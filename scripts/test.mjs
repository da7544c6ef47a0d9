// `npm test`: installs or finds the system parts the three test projects need (scripts/setup.mjs;
// when something is still missing it stops here with one line saying what), builds dist/ (the
// adapter and package tests run it), then runs Vitest with the arguments given
// (`npm test -- --project node test/io`).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensure } from './setup.mjs';
import { probe, runtimeEnv } from './system.mjs';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const vitest = join(root, 'node_modules/vitest/vitest.mjs');
if (!existsSync(vitest)) {
  console.error('medseg: cannot run the tests: node_modules is missing or incomplete; run `npm ci` first');
  process.exit(1);
}
const r = ensure('test');
console.error(r.line);
if (!r.ok) process.exit(1);

const add = runtimeEnv(probe({ root }), process.env);
if (add.XDG_RUNTIME_DIR) mkdirSync(add.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
const env = { ...process.env, ...add };
execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit', env });
const child = spawn(process.execPath, [vitest, 'run', ...process.argv.slice(2)], { stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
