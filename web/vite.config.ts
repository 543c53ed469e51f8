import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Served by the service under /portal/; hashed file names under /portal/assets/ are cached
// for a year, index.html never.
export default defineConfig({
  base: "/portal/",
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, target: "es2020" },
  server: { proxy: { "/portal/graphql": "http://127.0.0.1:8000" } },
  test: { environment: "jsdom", include: ["src/**/*.test.tsx"] },
});
