// Three projects run the same test files: `node` (Dawn via the webgpu package, the machine's GPU or
// SwiftShader), `llvmpipe` (the Node files again on Mesa llvmpipe through Dawn's OpenGL backend, the
// other CPU adapter, whose compiler differs: a batch-norm kernel once passed on SwiftShader and
// failed there) and `browser` (Debian's Chromium through Playwright, WebGPU on SwiftShader unless
// MEDSEG_BROWSER_GPU=1, which launches Chromium on the machine's real GPU with Vulkan).
// Which Chromium and SwiftShader (MEDSEG_CHROMIUM, Debian's chromium or Playwright's build) and the
// browser flags come from scripts/system.mjs, which `npm test` also uses to install what is missing.
// The llvmpipe project needs Mesa's EGL, so it runs on Linux only.
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumArgs, findChromium, probe, runtimeEnv } from './scripts/system.mjs';

const facts = probe();
const chromium = findChromium(facts)?.path ?? '/usr/bin/chromium';
const realGpu = process.env.MEDSEG_BROWSER_GPU === '1';
// SwiftShader's ICD beside a Playwright Chromium, for the Node projects (forks inherit process.env)
Object.assign(process.env, runtimeEnv(facts, process.env));
const linux = process.platform === 'linux';
// Runs that take many minutes on a CPU adapter are not part of `npm test`; each is collected only
// when its variable asks for it (so the suite lists no skipped tests).
const optIn = process.env.MEDSEG_MEDSAM_FULL === '1' ? [] : ['test/models/medsam-full.node.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'node',
          testTimeout: 600_000,
          hookTimeout: 120_000,
          include: ['test/**/*.test.ts'],
          exclude: optIn,
          environment: 'node',
          pool: 'forks',
        },
      },
      ...(linux ? [{
        test: {
          name: 'llvmpipe',
          testTimeout: 600_000,
          hookTimeout: 120_000,
          include: ['test/**/*.test.ts'],
          // the adapter test opens every adapter itself; packaging and setup are no adapter's; the
          // demo test drives Chromium, whose WebGPU is SwiftShader whatever MEDSEG_ADAPTER says
          exclude: ['test/adapters.node.test.ts', 'test/package.node.test.ts', 'test/setup.node.test.ts', 'test/demo/**', ...optIn],
          environment: 'node',
          pool: 'forks' as const,
          env: { MEDSEG_ADAPTER: 'llvmpipe', EGL_PLATFORM: 'surfaceless' },
        },
      }] : []),
      {
        test: {
          name: 'browser',
          testTimeout: 600_000,
          hookTimeout: 120_000,
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.node.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({ launchOptions: { executablePath: chromium, args: chromiumArgs(realGpu) } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
