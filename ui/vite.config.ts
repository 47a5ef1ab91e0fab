// The dashboard build (npm run build:ui): ui/ → dist-ui/, served by every node at /ui (src/http/ui-routes.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  // No public/ directory: every file the page needs is a hashed asset under assets/.
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist-ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The node serves only /ui and /ui/assets/<file>: nothing may be inlined as a data: script.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
});
