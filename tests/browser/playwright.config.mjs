// The browser suite: Debian's Chromium (never a downloaded browser), one worker (the specs share
// one platform and the last one stops a service), bounded time. The platform is started by
// run.mjs or .ci/steps/browser; AGORA_URL is its gateway and AGORA_DATA its data directory.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './specs',
  // Files run in name order: 90-isolation stops the orders service, so it comes last.
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 90_000,
  // A cap for a loaded machine; a warm run takes about 3 minutes.
  globalTimeout: 9 * 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    baseURL: process.env.AGORA_URL,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    launchOptions: {
      executablePath: process.env.AGORA_CHROMIUM || '/usr/bin/chromium',
      // Running as root (CI) needs --no-sandbox; the container has no user namespaces either.
      args: ['--no-sandbox'],
    },
    actionTimeout: 10_000,
    navigationTimeout: 20_000,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
});
