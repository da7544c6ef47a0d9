// Three projects run the same test files: `node` (Dawn via the webgpu package, the machine's GPU or
// SwiftShader), `llvmpipe` (the Node files again on Mesa llvmpipe through Dawn's OpenGL backend, the
// other CPU adapter, whose compiler differs: a batch-norm kernel once passed on SwiftShader and
// failed there) and `browser` (Debian's Chromium through Playwright, WebGPU on SwiftShader unless
// MEDSEG_BROWSER_GPU=1, which launches Chromium on the machine's real GPU with Vulkan).
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';

const chromium = process.env.MEDSEG_CHROMIUM ?? '/usr/bin/chromium';
const realGpu = process.env.MEDSEG_BROWSER_GPU === '1';
const common = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const gpuFlags = realGpu
  ? ['--enable-features=Vulkan,VulkanFromANGLE', '--use-angle=vulkan', '--ignore-gpu-blocklist']
  : ['--use-webgpu-adapter=swiftshader'];

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
          environment: 'node',
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'llvmpipe',
          testTimeout: 600_000,
          hookTimeout: 120_000,
          include: ['test/**/*.test.ts'],
          // the adapter test opens every adapter itself
          exclude: ['test/adapters.node.test.ts'],
          environment: 'node',
          pool: 'forks',
          env: { MEDSEG_ADAPTER: 'llvmpipe', EGL_PLATFORM: 'surfaceless' },
        },
      },
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
            provider: playwright({ launchOptions: { executablePath: chromium, args: [...common, ...gpuFlags] } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
