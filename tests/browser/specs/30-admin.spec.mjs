// Issue 14, test 3: the demo admin creates a product and sets its stock, and the storefront shows
// it; the admin ships an order and its payment is captured.
import { randomUUID } from 'node:crypto';
import { test, expect } from '@playwright/test';
import { checkA11y } from '../lib/axe.mjs';
import { inStockProduct } from '../lib/catalog.mjs';
import { admin, newShopper, call, token, eventually } from '../lib/platform.mjs';
import { open, settled, logIn } from '../lib/ui.mjs';

const adminNav = (page, name) => page.getByRole('navigation', { name: 'Admin', exact: true }).getByRole('link', { name });

test('admin: create a product with stock, it shows in the storefront; ship an order, its payment is captured', async ({ page, request, browser }) => {
  await logIn(page, admin());
  const bearer = await token(request, admin());
  const id = randomUUID().slice(0, 8);
  const name = `Browser test lamp ${id}`;
  const sku = `BT-${id}`.toUpperCase();
  const category = (await call(request, null, 'GET', '/categories')).body;
  const slug = (Array.isArray(category) ? category : category.items)[0].slug;

  await test.step('create a product', async () => {
    await open(page, '/admin');
    await checkA11y(page, 'admin home');
    await adminNav(page, /products/i).click();
    await settled(page);
    await checkA11y(page, 'admin products');
    await page.getByRole('link', { name: 'New product' }).click();
    await settled(page);
    await page.getByLabel('SKU').fill(sku);
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Description').fill('A lamp the browser suite made.');
    await page.getByLabel('Price').fill('24.50');
    await page.getByLabel('Currency').fill('EUR');
    await page.getByLabel('Category').selectOption(slug);
    await checkA11y(page, 'admin new product');
    await page.getByRole('button', { name: 'Create product' }).click();
    await expect(page.getByRole('main').getByRole('status').filter({ hasText: /created/i }).first()).toBeVisible();
  });

  const product = await eventually(async () => {
    const r = await call(request, null, 'GET', `/products?q=${encodeURIComponent(id)}`);
    return r.body?.items?.find((p) => p.sku === sku);
  }, 10_000, 'the new product in the API');
  expect(product.price).toEqual({ amount: 2450, currency: 'EUR' });

  await test.step('set its stock', async () => {
    await page.getByRole('link', { name: 'Stock of this product' }).click();
    await settled(page);
    await page.getByLabel('On hand').fill('7');
    await page.getByLabel('Note').fill('first delivery');
    await page.getByRole('button', { name: 'Set count' }).click();
    await expect(page.getByRole('main').getByRole('status').first()).toContainText('set to 7');
    await checkA11y(page, 'admin stock');
  });

  await test.step('a shopper sees it in stock', async () => {
    await eventually(async () => (await call(request, null, 'GET', `/products/${product.id}`)).body?.availability?.available === 7, 15_000, 'availability 7');
    const shopper = await browser.newContext();
    const shop = await shopper.newPage();
    await open(shop, `/search?q=${encodeURIComponent(name)}`);
    await expect(shop.getByRole('link', { name }).first()).toBeVisible();
    await shop.getByRole('link', { name }).first().click();
    await expect(shop.getByRole('heading', { level: 1, name })).toBeVisible();
    await expect(shop.getByTestId('availability')).toHaveText(/in stock/i);
    await shopper.close();
  });

  await test.step('the admin\'s own browser shows the new stock too', async () => {
    // This browser read the product (version 1) before its stock was set: a 304 on the
    // product's version alone would show the old availability.
    await open(page, `/p/${product.id}`);
    await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
    await expect.soft(page.getByTestId('availability'), 'availability after the stock was set (a stale 304?)').toHaveText(/in stock/i);
  });

  await test.step('ship an order: its payment is captured', async () => {
    const shopper = newShopper();
    expect((await call(request, null, 'POST', '/users', shopper)).status).toBe(201);
    const buyer = await token(request, { login: shopper.username, password: shopper.password });
    const bought = await inStockProduct(request);
    const placed = await request.post('/api/orders', {
      headers: { authorization: `Bearer ${buyer}`, 'idempotency-key': randomUUID() },
      data: {
        items: [{ product_id: bought.id, quantity: 1 }], payment_method: 'pm_card_visa',
        shipping_address: { name: 'Grace Hopper', line1: '1 Navy Way', city: 'Arlington', postal_code: '22201', country: 'US' },
      },
    });
    expect([201, 202]).toContain(placed.status());
    const order = await placed.json();
    await eventually(async () => (await call(request, bearer, 'GET', `/orders/${order.id}`)).body?.status === 'confirmed', 20_000, 'order confirmed');

    await open(page, '/admin');
    await adminNav(page, /orders/i).click();
    await settled(page);
    await checkA11y(page, 'admin orders');
    // By keyboard: the link starts with a visually hidden "Order ", whose 1-px box is where
    // Playwright would aim a click (a person clicks the visible id).
    await page.locator(`main a[href="/admin/orders/${order.id}"]`).first().press('Enter');
    await settled(page);
    await page.getByRole('button', { name: 'Ship order' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Ship order' }).click();
    await expect(page.getByRole('main').getByRole('status').first()).toContainText(/shipped/i, { timeout: 20_000 });
    await expect(page.getByRole('main')).toContainText(/shipped/i, { timeout: 20_000 });
    await checkA11y(page, 'admin order shipped');
    const payment = await eventually(async () => {
      const r = await call(request, bearer, 'GET', `/payments?order_id=${order.id}`);
      return r.body?.items?.find((p) => p.status === 'captured');
    }, 20_000, 'payment captured');
    expect(payment.captured_amount).toBe(order.total.amount);
  });
});
