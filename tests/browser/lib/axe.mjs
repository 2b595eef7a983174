// axe-core on the page as it is: no `serious` or `critical` violation. The page's CSP allows only
// 'self' scripts, so `addScriptTag({path})` (an inline script) is refused; the source is then
// evaluated through the DevTools protocol, which the CSP does not govern.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { expect } from '@playwright/test';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
const axeSource = readFileSync(axePath, 'utf8');

/** Where the injection worked, for the report: 'script-tag' or 'evaluate'. */
export const injection = { how: null };

async function inject(page) {
  if (await page.evaluate(() => typeof window.axe === 'object')) return;
  try {
    await page.addScriptTag({ path: axePath });
  } catch {
    // refused by the CSP: fall through to evaluate
  }
  if (await page.evaluate(() => typeof window.axe === 'object')) {
    injection.how ??= 'script-tag';
    return;
  }
  await page.evaluate(axeSource);
  if (!injection.how) console.log("axe-core: the page's CSP refused addScriptTag; its source is evaluated instead");
  injection.how ??= 'evaluate';
}

/** Runs axe on the whole page and fails on any serious or critical violation, naming each
 * (`soft`: the test goes on and fails at its end). */
export async function checkA11y(page, label, { soft = false } = {}) {
  await inject(page);
  const result = await page.evaluate(async () => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const lines = bad.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  (soft ? expect.soft : expect)(lines, `axe on ${label} (${page.url()})`).toEqual([]);
  return result;
}
