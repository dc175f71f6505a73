// electron-vite configuration (passed with -c). Three builds: the main process (plus the
// headless server entry, which runs in plain Node), the sandboxed preload, and the renderer.
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import type { Plugin } from 'vite';
import { contentSecurityPolicy } from './src/shared/csp.ts';

// The page's CSP meta tag takes the one policy src/shared/csp.ts defines for the app and the
// headless server alike, so the two cannot drift apart.
const cspMeta: Plugin = {
  name: 'strata-csp',
  transformIndexHtml: (html) => {
    if (!html.includes('%STRATA_CSP%')) throw new Error('index.html has no %STRATA_CSP% placeholder for the CSP');
    return html.replace('%STRATA_CSP%', contentSecurityPolicy);
  },
};

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'src/main/electron/index.ts'),
          serve: resolve(__dirname, 'src/main/server/cli.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { index: resolve(__dirname, 'src/preload/index.ts') },
        // A sandboxed preload must be a single CommonJS file.
        output: { format: 'cjs', entryFileNames: '[name].cjs', codeSplitting: false },
      },
    },
  },
  renderer: {
    root: resolve(__dirname, 'src/renderer'),
    plugins: [svelte({ configFile: resolve(__dirname, 'svelte.config.js') }), cspMeta],
    build: {
      outDir: resolve(__dirname, 'out/renderer'),
      rollupOptions: { input: resolve(__dirname, 'src/renderer/index.html') },
    },
  },
});
