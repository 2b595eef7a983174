// Issue 14, test 4: with the orders service down, browsing and the cart still work and the orders
// region says it is unavailable; killed for real, it is restarted and the page comes back. Runs
// last: it takes a service away (and gives it back).
//
// The service is stopped with SIGSTOP rather than killed: `agora up` restarts a killed service
// within a second, which leaves no window to look at the pages; a stopped process holds its port
// but answers nothing, so the gateway's health checks eject it as they would a dead one.
import { execFileSync } from 'node:child_process';
import { test, expect } from '@playwright/test';
import { checkA11y } from '../lib/axe.mjs';
import { inStockProduct } from '../lib/catalog.mjs';
import { servicePort, eventually } from '../lib/platform.mjs';
import { open, cartBadge } from '../lib/ui.mjs';
import { shoot } from '../lib/shots.mjs';

/** The pid listening on a local port (`ss -ltnp`), or null. */
function listenerPid(port) {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const m = out.match(/pid=(\d+)/);
  return m ? Number(m[1]) : null;
}

test('orders down: browsing and the cart work, the orders region says unavailable; killed, it comes back', async ({ page, request }) => {
  // Up to 60 s for the restart below: `agora up` backs off 1, 2, 4 ... s between tries.
  test.setTimeout(150_000);
  const pid = listenerPid(servicePort.orders);
  expect(pid, `a process listening on the orders port ${servicePort.orders}`).toBeTruthy();
  const product = await inStockProduct(request, { skip: 3 });
  process.kill(pid, 'SIGSTOP');
  try {
    await eventually(async () => {
      const r = await request.get('/ui/orders/manifest.json', { timeout: 8_000 }).catch(() => null);
      return !r || !r.ok();
    }, 30_000, 'the gateway noticing orders is down');

    await open(page, '/');
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await open(page, `/p/${product.id}`);
    await expect(page.getByRole('heading', { level: 1, name: product.name })).toBeVisible();
    await page.getByRole('button', { name: /add to cart/i }).click();
    await expect(cartBadge(page)).toContainText('1');
    await open(page, '/cart');
    await expect(page.getByRole('main').getByText(product.name).first()).toBeVisible();

    await open(page, '/orders');
    await expect(page.getByRole('main')).toContainText(/unavailable/i, { timeout: 20_000 });
    await expect(page.locator('header')).toBeVisible();
    await checkA11y(page, 'orders unavailable');
    await shoot(page, 'orders-unavailable');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await eventually(async () => (await request.get('/ui/orders/manifest.json')).ok(), 30_000, 'orders back');

  // Killed for real: `agora up` starts it again, and the orders page comes back by itself.
  process.kill(pid, 'SIGKILL');
  await eventually(async () => {
    const again = listenerPid(servicePort.orders);
    return again && again !== pid && (await request.get('/ui/orders/manifest.json')).ok();
  }, 60_000, 'orders restarted (see test-results/agora-up.log)');
  await open(page, '/orders');
  await expect(page.getByRole('heading', { level: 1, name: /your orders/i })).toBeVisible();
  await expect(page.getByRole('main')).not.toContainText(/unavailable/i);
});
