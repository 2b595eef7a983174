// Issue 14, test 1: the shopper's journey from the home page to a cancelled order, as a guest who
// registers on the way; axe on every page visited.
import { test, expect } from '@playwright/test';
import { checkA11y } from '../lib/axe.mjs';
import { inStockProduct, searchWord } from '../lib/catalog.mjs';
import { newShopper, token, orders, stock, eventually } from '../lib/platform.mjs';
import { open, settled, register, logIn, fillAddress, choosePayment, placeOrderButton, cartBadge, confirmNext, confirmInPage, tabTo, focusVisible } from '../lib/ui.mjs';

test('shopper: browse, cart as a guest, register, check out, cancel; stock is back', async ({ page, request }) => {
  const product = await inStockProduct(request);
  const before = await stock(request, product.sku);

  await test.step('home', async () => {
    await open(page, '/');
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await checkA11y(page, 'home');
  });

  await test.step('search', async () => {
    const box = page.getByRole('searchbox').first();
    await box.fill(searchWord(product));
    await box.press('Enter');
    await expect(page).toHaveURL(/\/search\?.*q=/);
    await settled(page);
    await expect(page.getByRole('link', { name: product.name }).first()).toBeVisible();
    await checkA11y(page, 'search results');
  });

  await test.step('product, add to cart as a guest', async () => {
    await page.getByRole('link', { name: product.name }).first().click();
    await expect(page).toHaveURL(new RegExp(`/p/${product.id}`));
    await expect(page.getByRole('heading', { level: 1, name: product.name })).toBeVisible();
    await checkA11y(page, 'product');
    await page.getByRole('button', { name: /add to cart/i }).click();
    await expect(cartBadge(page)).toContainText('1');
  });

  await test.step('reload: the guest cart is kept', async () => {
    await page.reload();
    await settled(page);
    await expect(cartBadge(page)).toContainText('1');
    await open(page, '/cart');
    await expect(page.getByRole('main').getByText(product.name).first()).toBeVisible();
    await checkA11y(page, 'cart (guest)');
  });

  const shopper = newShopper();
  await test.step('register, log in: the guest cart is merged', async () => {
    await register(page, shopper);
    await checkA11y(page, 'after registering');
    // Registering signs the shopper in; if this page does not, log in as a user would.
    const signedIn = page.getByRole('button', { name: /log out/i }).or(page.getByRole('link', { name: /log out/i }));
    if (!(await signedIn.first().isVisible({ timeout: 5_000 }).catch(() => false))) {
      await logIn(page, { login: shopper.username, password: shopper.password });
    }
    await open(page, '/cart');
    await expect(page.getByRole('main').getByText(product.name).first()).toBeVisible();
    await expect(cartBadge(page)).toContainText('1');
    await checkA11y(page, 'cart (signed in)');
  });

  let orderId;
  await test.step('checkout with pm_card_visa → confirmation', async () => {
    await page.getByRole('main').getByRole('link', { name: /check ?out/i }).or(page.getByRole('main').getByRole('button', { name: /check ?out/i })).first().click();
    await expect(page).toHaveURL(/\/checkout/);
    await settled(page);
    await checkA11y(page, 'checkout');
    await fillAddress(page);
    await choosePayment(page, 'pm_card_visa');
    await placeOrderButton(page).click();
    await expect(page).toHaveURL(/\/orders\/[^/?#]+/, { timeout: 30_000 });
    orderId = new URL(page.url()).pathname.split('/').pop();
    await settled(page);
    await expect(page.getByRole('main')).toContainText(/confirmed|thank/i, { timeout: 20_000 });
    await checkA11y(page, 'order confirmation');
  });

  const bearer = await token(request, { login: shopper.username, password: shopper.password });
  await test.step('the order is in the history', async () => {
    await open(page, '/orders');
    await expect(page.locator(`main a[href$="/orders/${orderId}"]`).first()).toBeVisible();
    await checkA11y(page, 'order history');
    const mine = await orders(request, bearer);
    expect(mine.map((o) => o.id)).toContain(orderId);
  });

  await test.step('cancel → the stock is back', async () => {
    await open(page, `/orders/${orderId}`);
    confirmNext(page);
    await page.getByRole('button', { name: /cancel order/i }).click();
    await confirmInPage(page);
    await expect(page.getByRole('main')).toContainText(/cancelled|canceled/i, { timeout: 20_000 });
    await checkA11y(page, 'cancelled order');
    await eventually(async () => (await stock(request, product.sku)).available === before.available, 20_000, 'stock given back');
  });
});

test('keyboard only: search, open a product, add it to the cart, with the focus always visible', async ({ page, request }) => {
  const product = await inStockProduct(request, { skip: 4 });
  await open(page, '/');
  const box = page.getByRole('searchbox').first();
  await tabTo(page, box);
  expect(await focusVisible(box), 'focus ring on the search box').toBe(true);
  await page.keyboard.type(product.name);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/search\?.*q=/);
  await settled(page);
  const link = page.getByRole('main').getByRole('link', { name: product.name }).first();
  await tabTo(page, link);
  expect(await focusVisible(link), 'focus ring on the product link').toBe(true);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: product.name })).toBeVisible();
  const add = page.getByRole('button', { name: /add to cart/i });
  await tabTo(page, add);
  expect(await focusVisible(add), 'focus ring on Add to cart').toBe(true);
  await page.keyboard.press('Enter');
  await expect(cartBadge(page)).toContainText('1');
});
