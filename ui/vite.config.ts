import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  build: { outDir: 'dist', target: 'es2022' },
  test: { include: ['src/test/**/*.test.ts'], environment: 'node' },
});
