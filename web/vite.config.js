import { defineConfig } from 'vite'

// The console builds into api/console/dist, which the ogma binary embeds
// (go:embed); `make console` runs this, and the built files are committed
// so that a fresh clone builds and tests without npm.
export default defineConfig({
  base: './',
  build: {
    outDir: '../api/console/dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
  },
})
