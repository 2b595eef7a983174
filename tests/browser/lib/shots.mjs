// Screenshots for docs/screenshots/: one per page and width, written by the suite and committed
// (with AGORA_UPDATE_SCREENSHOTS=1).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The committed pictures change only when asked (AGORA_UPDATE_SCREENSHOTS=1), so a local CI run
// leaves the tree clean; otherwise they go with the run's other results.
export const shotsDir = process.env.AGORA_UPDATE_SCREENSHOTS === '1'
  ? join(here, '..', '..', '..', 'docs', 'screenshots')
  : join(here, '..', 'test-results', 'screenshots');

export async function shoot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  const { width } = page.viewportSize();
  // Settle: no network for a moment, fonts loaded, no caret blinking into the picture.
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.evaluate(() => document.fonts?.ready);
  await page.screenshot({ path: join(shotsDir, `${name}-${width}.png`), fullPage: false, caret: 'hide', animations: 'disabled' });
}
