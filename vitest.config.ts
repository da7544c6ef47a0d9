// Two projects run the same test files: `node` (Dawn via the webgpu package) and `browser`
// (Debian's Chromium through Playwright, WebGPU on SwiftShader unless MEDSEG_BROWSER_GPU=1, which
// launches Chromium on the machine's real GPU with Vulkan).
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
