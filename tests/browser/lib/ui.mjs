// Steps the specs share, written against the pages' accessible names (docs/frontend.md: labels,
// buttons that say what they do). One place to adapt when a page's wording changes.
import { expect } from '@playwright/test';

/** Waits until the shell has put a page element in <main> and it has rendered something. */
export async function settled(page) {
  await page.locator('main').first().waitFor();
  await expect(page.locator('main')).not.toBeEmpty();
  await page.waitForLoadState('networkidle').catch(() => {});
}

/** Opens a path of the storefront and waits for it. */
export async function open(page, path) {
  await page.goto(path);
  await settled(page);
}

/** Accepts the next window.confirm(), and an in-page confirmation button if the page shows one. */
export async function confirmNext(page) {
  page.once('dialog', (d) => d.accept());
}

export async function confirmInPage(page) {
  const yes = page.getByRole('button', { name: /^(yes|confirm)/i }).first();
  if (await yes.waitFor({ timeout: 3_000 }).then(() => true, () => false)) await yes.click();
}

/** Logs in on /login with the given login (username or email) and password. */
export async function logIn(page, { login, password }, next) {
  await open(page, next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  await page.getByLabel(/username or email|login|username|email/i).first().fill(login);
  await page.getByLabel(/^password/i).first().fill(password);
  await page.getByRole('main').getByRole('button', { name: /log in|sign in/i }).click();
  await expect(page.getByRole('button', { name: /log out/i }).or(page.getByRole('link', { name: /log out/i })).first())
    .toBeAttached({ timeout: 15_000 });
}

/** Registers on /register (the page logs the new user in). */
export async function register(page, shopper) {
  await open(page, '/register');
  await page.getByLabel(/username/i).first().fill(shopper.username);
  await page.getByLabel(/e-?mail/i).first().fill(shopper.email);
  const passwords = page.getByLabel(/password/i);
  for (let i = 0; i < (await passwords.count()); i += 1) await passwords.nth(i).fill(shopper.password);
  await page.getByRole('main').getByRole('button', { name: /register|create account|sign up/i }).click();
}

/** Fills the checkout's shipping address. */
export async function fillAddress(page, address = {}) {
  const a = { name: 'Ada Lovelace', line1: '12 Analytical Street', city: 'London', postal_code: 'N1 9GU', country: 'GB', ...address };
  await page.getByLabel(/full name|^name/i).first().fill(a.name);
  await page.getByLabel(/address line 1|^address|street/i).first().fill(a.line1);
  await page.getByLabel(/city|town/i).first().fill(a.city);
  await page.getByLabel(/postal code|postcode|zip/i).first().fill(a.postal_code);
  const country = page.getByLabel(/country/i).first();
  if ((await country.evaluate((el) => el.tagName)) === 'SELECT') await country.selectOption(a.country);
  else await country.fill(a.country);
}

/** Picks a test card by its payment-method token (a select, radio buttons or a text field). */
export async function choosePayment(page, method) {
  const radio = page.locator(`input[type=radio][value="${method}"]`);
  if (await radio.count()) { await radio.check(); return; }
  const field = page.getByLabel(/payment method|card/i).first();
  if ((await field.evaluate((el) => el.tagName)) === 'SELECT') await field.selectOption(method);
  else await field.fill(method);
}

export const placeOrderButton = (page) => page.getByRole('button', { name: /^place order$/i });

/** The cart badge in the header: its text holds the item count. */
export const cartBadge = (page) => page.locator('cart-badge');

/** Presses Tab until `locator` has the focus (at most `max` times); fails when it never does. */
export async function tabTo(page, locator, max = 60) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    if (await locator.evaluate((el) => el === document.activeElement).catch(() => false)) return;
  }
  throw new Error(`Tab never reached ${locator}`);
}

/** Whether the focused element shows it: an outline or a box shadow (the focus ring). */
export async function focusVisible(locator) {
  return locator.evaluate((el) => {
    const s = getComputedStyle(el);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  });
}
