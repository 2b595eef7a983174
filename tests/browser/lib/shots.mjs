// Screenshots for docs/screenshots/: one per page and width, written by the suite and committed.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const shotsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'screenshots');

export async function shoot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  const { width } = page.viewportSize();
  // Settle: no network for a moment, fonts loaded, no caret blinking into the picture.
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.evaluate(() => document.fonts?.ready);
  await page.screenshot({ path: join(shotsDir, `${name}-${width}.png`), fullPage: false, caret: 'hide', animations: 'disabled' });
}
