// Issue 14, test 7: screenshots of the main pages at 1280×900 and 375×812 into docs/screenshots/
// (committed), with axe on each page at each width and, at 375 px, no page wider than the screen.
// Runs first, on the demo data as `agora up` seeds it; the demo shopper has a cart and gets one order.
// Its checks are soft: every page is photographed, and the test fails at the end if one failed.
import { randomUUID } from 'node:crypto';
import { test, expect } from '@playwright/test';
import { checkA11y } from '../lib/axe.mjs';
import { shoot } from '../lib/shots.mjs';
import { inStockProduct, searchWord } from '../lib/catalog.mjs';
import { admin, demo, token, orders } from '../lib/platform.mjs';
import { open, logIn } from '../lib/ui.mjs';

const sizes = [{ width: 1280, height: 900 }, { width: 375, height: 812 }];

for (const size of sizes) {
  test(`screenshots at ${size.width}×${size.height}`, async ({ browser, request }) => {
    const product = await inStockProduct(request);
    const bearer = await token(request, demo());
    let order = (await orders(request, bearer))[0];
    if (!order) {
      const r = await request.post('/api/orders', {
        headers: { authorization: `Bearer ${bearer}`, 'idempotency-key': randomUUID() },
        data: {
          items: [{ product_id: product.id, quantity: 1 }], payment_method: 'pm_card_visa',
          shipping_address: { name: 'Demo Shopper', line1: '1 Market Square', city: 'Bristol', postal_code: 'BS1 1AA', country: 'GB' },
        },
      });
      expect([201, 202]).toContain(r.status());
      order = await r.json();
    }
    const visit = async (page, path, name) => {
      await open(page, path);
      await checkA11y(page, `${name} at ${size.width}`, { soft: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect.soft(overflow, `${name} at ${size.width} px scrolls sideways by ${overflow} px`).toBeLessThanOrEqual(0);
      await shoot(page, name);
    };

    const guest = await browser.newContext({ viewport: size });
    const g = await guest.newPage();
    await visit(g, '/', 'home');
    await visit(g, `/search?q=${encodeURIComponent(searchWord(product))}`, 'search');
    await visit(g, '/c/books', 'category');
    await visit(g, `/p/${product.id}`, 'product');
    await visit(g, '/login', 'login');
    await visit(g, '/register', 'register');
    await guest.close();

    const shopper = await browser.newContext({ viewport: size });
    const s = await shopper.newPage();
    await logIn(s, demo());
    await visit(s, '/cart', 'cart');
    await visit(s, '/checkout', 'checkout');
    await visit(s, '/orders', 'orders');
    await visit(s, `/orders/${order.id}`, 'order');
    await shopper.close();

    const staff = await browser.newContext({ viewport: size });
    const a = await staff.newPage();
    await logIn(a, admin());
    await visit(a, '/admin', 'admin');
    await visit(a, '/admin/orders', 'admin-orders');
    await visit(a, '/admin/status', 'admin-status');
    await staff.close();
  });
}
