// Issue 14, test 6: Lighthouse on home, product and cart (its default mobile profile with simulated
// throttling, Debian's Chromium): performance, accessibility and best practices at least 90.
// The figures are printed and written to test-results/lighthouse.json (docs/performance.md quotes them).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import lighthouse from 'lighthouse';
import * as chromeLauncher from 'chrome-launcher';
import { baseURL } from '../lib/platform.mjs';
import { inStockProduct } from '../lib/catalog.mjs';

const categories = ['performance', 'accessibility', 'best-practices'];
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-results');

test('lighthouse: home, product, cart score at least 90', async ({ request }) => {
  test.setTimeout(240_000);
  const product = await inStockProduct(request);
  const pages = { home: '/', product: `/p/${product.id}`, cart: '/cart' };
  const chrome = await chromeLauncher.launch({
    chromePath: process.env.AGORA_CHROMIUM || '/usr/bin/chromium',
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  const figures = {};
  try {
    for (const [name, path] of Object.entries(pages)) {
      const result = await lighthouse(`${baseURL}${path}`, {
        port: chrome.port, output: 'json', logLevel: 'error', onlyCategories: categories,
      });
      const lhr = result.lhr;
      figures[name] = Object.fromEntries(categories.map((c) => [c, Math.round((lhr.categories[c]?.score ?? 0) * 100)]));
      figures[name].lcp_ms = Math.round(lhr.audits['largest-contentful-paint']?.numericValue ?? 0);
      figures[name].tbt_ms = Math.round(lhr.audits['total-blocking-time']?.numericValue ?? 0);
      figures[name].cls = Number((lhr.audits['cumulative-layout-shift']?.numericValue ?? 0).toFixed(3));
      figures[name].failing = Object.values(lhr.audits)
        .filter((a) => a.score !== null && a.score < 0.9 && a.scoreDisplayMode !== 'informative' && a.scoreDisplayMode !== 'notApplicable' && a.scoreDisplayMode !== 'manual')
        .map((a) => a.id);
    }
  } finally {
    await chrome.kill();
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'lighthouse.json'), JSON.stringify({ chromium: 'debian', figures }, null, 2));
  console.log('Lighthouse (mobile profile, simulated throttling)');
  console.log('page      perf  a11y  best   LCP ms  TBT ms  CLS');
  for (const [name, f] of Object.entries(figures)) {
    console.log(`${name.padEnd(9)} ${String(f.performance).padStart(4)}  ${String(f.accessibility).padStart(4)}  ${String(f['best-practices']).padStart(4)}  ${String(f.lcp_ms).padStart(7)} ${String(f.tbt_ms).padStart(7)}  ${f.cls}`);
    if (f.failing.length) console.log(`          audits under 0.9: ${f.failing.join(', ')}`);
  }
  for (const [name, f] of Object.entries(figures)) {
    for (const c of categories) expect.soft(f[c], `${c} of ${name}`).toBeGreaterThanOrEqual(90);
  }
});
