// Issue 14, test 6: Lighthouse on home, product and cart (with a guest's line) (its default mobile profile with simulated
// throttling, Debian's Chromium): performance, accessibility and best practices at least 90.
// Performance is the median of three runs per page, as Lighthouse's own guidance on variability
// advises: its simulated 4x-slower CPU multiplies the time this host's main thread really took, so
// one run on the shared machine (steal time, a neighbour's build) can lose ten points (TBT 16 ms on
// a quiet run, 411 ms on a noisy one, for the same page); the median of three needs two slow runs.
// The figures are printed and written to test-results/lighthouse.json (docs/performance.md quotes them).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect, chromium } from '@playwright/test';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { baseURL } from '../lib/platform.mjs';
import { inStockProduct } from '../lib/catalog.mjs';
import { open, cartBadge } from '../lib/ui.mjs';

const categories = ['performance', 'accessibility', 'best-practices'];
const RUNS = 3;

// The run whose performance score is the median gives the timings; accessibility and best
// practices do not depend on the host's speed, so the worst run's score and every failed request count.
function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.performance - b.performance);
  return {
    ...sorted[Math.floor(sorted.length / 2)],
    accessibility: Math.min(...runs.map((r) => r.accessibility)),
    'best-practices': Math.min(...runs.map((r) => r['best-practices'])),
    failed_requests: [...new Set(runs.flatMap((r) => r.failed_requests))],
    all_performance: runs.map((r) => r.performance),
  };
}

function figuresOf(lhr) {
  const f = Object.fromEntries(categories.map((c) => [c, Math.round((lhr.categories[c]?.score ?? 0) * 100)]));
  f.lcp_ms = Math.round(lhr.audits['largest-contentful-paint']?.numericValue ?? 0);
  f.tbt_ms = Math.round(lhr.audits['total-blocking-time']?.numericValue ?? 0);
  f.cls = Number((lhr.audits['cumulative-layout-shift']?.numericValue ?? 0).toFixed(3));
  // How fast Lighthouse found this host's CPU (higher is faster): a low one explains a low score.
  f.benchmark_index = Math.round(lhr.environment?.benchmarkIndex ?? 0);
  // Which of the page's requests failed (the console errors Lighthouse counts).
  f.failed_requests = (lhr.audits['network-requests']?.details?.items ?? [])
    .filter((r) => r.statusCode >= 400).map((r) => `${r.statusCode} ${new URL(r.url).pathname}`);
  f.failing = Object.values(lhr.audits)
    .filter((a) => a.score !== null && a.score < 0.9 && a.scoreDisplayMode !== 'informative' && a.scoreDisplayMode !== 'notApplicable' && a.scoreDisplayMode !== 'manual')
    .map((a) => a.id);
  return f;
}
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results');

test('lighthouse: home, product, cart score at least 90', async ({ request, browser }) => {
  test.setTimeout(480_000);
  const product = await inStockProduct(request);
  // The cart page with a line in it: a guest adds the product in Playwright's Chromium, and
  // Lighthouse's browser gets that guest's cookies (the cart cookie is HttpOnly: no script sets it).
  const guest = await browser.newContext();
  const page = await guest.newPage();
  await open(page, `/p/${product.id}`);
  await page.getByRole('button', { name: /add to cart/i }).click();
  await expect(cartBadge(page)).toContainText('1');
  const cookies = await guest.cookies();
  await guest.close();
  const pages = { home: ['/'], product: [`/p/${product.id}`], cart: ['/cart', cookies] };
  const chrome = await chromeLauncher.launch({
    chromePath: process.env.AGORA_CHROMIUM || '/usr/bin/chromium',
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  const figures = {};
  try {
    for (const [name, [path, jar]] of Object.entries(pages)) {
      if (jar) {
        // Into Lighthouse's browser through the DevTools protocol; Lighthouse then keeps them.
        const cdp = await chromium.connectOverCDP(`http://127.0.0.1:${chrome.port}`);
        await cdp.contexts()[0].addCookies(jar);
        await cdp.close();
      }
      const runs = [];
      for (let i = 0; i < RUNS; i += 1) {
        const result = await lighthouse(`${baseURL}${path}`, {
          port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: categories,
          disableStorageReset: Boolean(jar),
        });
        runs.push(figuresOf(result.lhr));
      }
      figures[name] = medianRun(runs);
    }
  } finally {
    await chrome.kill();
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'lighthouse.json'), JSON.stringify({ chromium: 'debian', figures }, null, 2));
  console.log(`Lighthouse (mobile profile, simulated throttling; the median of ${RUNS} runs by performance)`);
  console.log('page      perf  a11y  best   LCP ms  TBT ms  CLS    benchmark  perf of each run');
  for (const [name, f] of Object.entries(figures)) {
    console.log(`${name.padEnd(9)} ${String(f.performance).padStart(4)}  ${String(f.accessibility).padStart(4)}  ${String(f['best-practices']).padStart(4)}  ${String(f.lcp_ms).padStart(7)} ${String(f.tbt_ms).padStart(7)}  ${String(f.cls).padEnd(6)} ${String(f.benchmark_index).padStart(9)}  ${f.all_performance.join(' ')}`);
    if (f.failing.length) console.log(`          audits under 0.9: ${f.failing.join(', ')}`);
    if (f.failed_requests.length) console.log(`          answers ≥ 400: ${f.failed_requests.join(', ')}`);
  }
  // A guest's session and cart answers are not errors (they were 401 and 404, which cost best practices).
  for (const [name, f] of Object.entries(figures)) {
    expect(f.failed_requests, `a guest's session on ${name}`).not.toContain('401 /session');
    expect(f.failed_requests, `a guest's cart on ${name}`).not.toContain('404 /session/cart');
  }
  for (const [name, f] of Object.entries(figures)) {
    for (const c of categories) expect.soft(f[c], `${c} of ${name}`).toBeGreaterThanOrEqual(90);
  }
});
