// Issue 14, test 2: a declined card (a clear message, the cart kept); a bad form (messages on the
// fields, nothing placed); a double click on "Place order" places one order.
import { test, expect } from '@playwright/test';
import { checkA11y } from '../lib/axe.mjs';
import { inStockProduct } from '../lib/catalog.mjs';
import { newShopper, call, token, orders, eventually } from '../lib/platform.mjs';
import { open, settled, logIn, fillAddress, choosePayment, placeOrderButton, cartBadge } from '../lib/ui.mjs';

async function shopperWithCart(page, request, skip) {
  const shopper = newShopper();
  const made = await call(request, null, 'POST', '/users', shopper);
  expect(made.status, 'register through the API').toBe(201);
  await logIn(page, { login: shopper.username, password: shopper.password });
  const product = await inStockProduct(request, { skip });
  await open(page, `/p/${product.id}`);
  await page.getByRole('button', { name: /add to cart/i }).click();
  await expect(cartBadge(page)).toContainText('1');
  await open(page, '/checkout');
  return { shopper, product, bearer: await token(request, { login: shopper.username, password: shopper.password }) };
}

test('declined card: a clear message, the cart is kept', async ({ page, request }) => {
  const { product } = await shopperWithCart(page, request, 1);
  await fillAddress(page);
  await choosePayment(page, 'pm_card_chargeDeclined');
  await placeOrderButton(page).click();
  const alert = page.getByRole('main').getByRole('alert').filter({ hasText: /declined/i });
  await expect(alert.first()).toBeVisible({ timeout: 30_000 });
  await checkA11y(page, 'checkout, card declined');
  await open(page, '/cart');
  await expect(page.getByRole('main').getByText(product.name).first()).toBeVisible();
  await expect(cartBadge(page)).toContainText('1');
});

test('bad form: messages on the fields; a double click places one order', async ({ page, request }) => {
  const { bearer } = await shopperWithCart(page, request, 2);
  const before = (await orders(request, bearer)).length;

  await test.step('empty form: each required field says what is wrong', async () => {
    await choosePayment(page, 'pm_card_visa');
    // The page may fill the name in from the account: clear every required field.
    for (const label of [/full name|^name/i, /address line 1|^address|street/i, /city|town/i, /postal code|postcode|zip/i]) {
      await page.getByLabel(label).first().fill('');
    }
    await placeOrderButton(page).click();
    await settled(page);
    for (const label of [/full name|^name/i, /address line 1|^address|street/i, /city|town/i, /postal code|postcode|zip/i]) {
      const field = page.getByLabel(label).first();
      // Either the page's own message (aria-invalid + a message linked by aria-describedby), or
      // the browser's constraint validation (`required`), which also names the problem.
      const message = await field.evaluate((el) => {
        if (el.getAttribute('aria-invalid') === 'true') {
          return (el.getAttribute('aria-describedby') || '').split(/\s+/)
            .map((id) => document.getElementById(id)?.textContent?.trim() || '').join(' ').trim();
        }
        return el.validity && !el.validity.valid ? el.validationMessage : '';
      });
      expect(message, `a message on the field labelled ${label}`).not.toBe('');
    }
    await checkA11y(page, 'checkout, invalid form');
    expect((await orders(request, bearer)).length, 'no order from an invalid form').toBe(before);
  });

  await test.step('double click on Place order', async () => {
    await fillAddress(page);
    await placeOrderButton(page).dblclick();
    await expect(page).toHaveURL(/\/orders\/[^/?#]+/, { timeout: 30_000 });
    // Give a second order, if one was sent, time to show.
    await page.waitForTimeout(2_000);
    const after = await eventually(async () => {
      const n = (await orders(request, bearer)).length;
      return n > before ? n : 0;
    }, 10_000, 'the order');
    expect(after - before, 'orders placed by a double click').toBe(1);
  });
});
