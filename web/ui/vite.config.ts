/// <reference types="vitest/config" />
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// The built app is package data of the Python package: `mailmark serve` serves it.
const outDir = fileURLToPath(new URL("../../src/mailmark/web/static/ui", import.meta.url));
// `npm run dev` proxies the server's routes to a running `mailmark serve` (MAILMARK_URL).
const server = process.env.MAILMARK_URL ?? "http://127.0.0.1:8025";

/**
 * The /schema explorer's files: Scalar's standalone bundle (from npm, not a CDN) and the small
 * script that starts it, emitted as hashed assets; `schema.json` tells the server their names.
 */
function schemaExplorer(): Plugin {
  return {
    name: "mailmark-schema-explorer",
    apply: "build",
    generateBundle() {
      const scalar = this.emitFile({
        type: "asset",
        name: "scalar-api-reference.js",
        source: readFileSync(
          new URL("./node_modules/@scalar/api-reference/dist/browser/standalone.js", import.meta.url),
        ),
      });
      const init = this.emitFile({
        type: "asset",
        name: "schema-explorer.js",
        source: readFileSync(new URL("./schema/init.js", import.meta.url)),
      });
      this.emitFile({
        type: "asset",
        fileName: "schema.json",
        source: JSON.stringify({
          scalar: `/${this.getFileName(scalar)}`,
          init: `/${this.getFileName(init)}`,
        }),
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), tailwindcss(), schemaExplorer()],
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: "assets",
    // Everything is a file under /assets/: the Content-Security-Policy allows no inline data.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: Object.fromEntries(
      ["/api", "/v1", "/schema", "/.well-known", "/mail", "/autodiscover", "/mobileconfig"].map(
        (path) => [path, { target: server, changeOrigin: false }],
      ),
    ),
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
    // The suite runs beside the Python tests on every core: a loaded machine is slow, not wrong.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
