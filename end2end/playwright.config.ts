import { defineConfig } from '@playwright/test';

// Browser tests of the kt console.
//
// Playwright starts the already-built debug binary in demo mode with a fresh data directory
// (`.kt-e2e`, next to this file). `kt demo` writes the demo credentials there
// (`demo-admin-password`, `demo-gateway-key`); tests/fixtures.ts reads them.
// The binary is built by the repository's test script before Playwright runs.
//
// Debian's Chromium is used (never `npx playwright install`: no browser downloads here).

const baseURL = process.env.KT_E2E_BASE_URL ?? 'http://127.0.0.1:3100';

// Only the basename is matched, so a directory called "no-js" cannot change the split.
const NO_JS_FILES = /[^/\\]*no-js[^/\\]*\.spec\.ts$/;

export default defineConfig({
  testDir: 'tests',
  reporter: 'list',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 30_000,
  forbidOnly: !!process.env.CI,
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        '--disable-dev-shm-usage',
      ],
    },
  },
  projects: [
    {
      name: 'chromium',
      testIgnore: NO_JS_FILES,
      use: { javaScriptEnabled: true },
    },
    {
      name: 'no-js',
      testMatch: NO_JS_FILES,
      use: { javaScriptEnabled: false },
    },
  ],
  webServer: {
    command: 'rm -rf .kt-e2e && ../target/debug/kt demo --addr 127.0.0.1:3100 --gateway-port 3101',
    env: { KT_DATA_DIR: '.kt-e2e', RUST_LOG: 'warn' },
    url: 'http://127.0.0.1:3100/healthz',
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
  },
});
