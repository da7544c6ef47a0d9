// Vite config of the demo (demo/ is the root): relative asset paths (base './') so the built
// folder works at a site root or under any sub-path; module workers; the bundled scan and its
// licence notice are imported as assets (?url) from ../data, so they travel with the build.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  worker: { format: 'es' },
  build: { outDir: '../dist-demo', emptyOutDir: true, target: 'es2022', assetsInlineLimit: 0, chunkSizeWarningLimit: 2000 },
  server: { host: 'localhost', fs: { allow: ['..'] } },
  preview: { host: 'localhost' },
});
