// What the cart's elements share: which cart the browser has, the wording of flags and failures.
import { api, cartChanged, html, money, unavailable as down } from 'agora/kit';

/** The cart view in a `/session/cart` answer (a bare cart or `{cart}`). */
export const cartOf = (data) => data?.cart ?? data;

/**
 * The browser's cart (`GET /session/cart`: the user's current cart, or the guest cart of the
 * browser's cookie). Resolves to `{cart}` (null when the browser has none yet) or `{failed}` (the
 * api() result to explain).
 */
export async function browserCart() {
  const result = await api('/session/cart');
  if (result.status === 404) return { cart: null };
  if (!result.ok) return { failed: result };
  return { cart: cartOf(result.data) };
}

/** Tells the page (the header's badge) the cart changed (`agora:cart`). */
export const announce = cartChanged;

export const productHref = (id) => `/p/${encodeURIComponent(id)}`;

/** A line's name; a product the catalog no longer has is named as such. */
export const lineName = (line) => line.name || 'A product no longer in the catalog';

/** What a flag tells the buyer. */
export function flagText(flag) {
  if (flag.kind === 'price_changed') {
    const was = money(flag.old_price.amount, flag.old_price.currency);
    const now = money(flag.new_price.amount, flag.new_price.currency);
    return `was ${was}, now ${now}.`;
  }
  if (flag.kind === 'unavailable') {
    return flag.reason === 'sold_out'
      ? 'sold out, it cannot be ordered now; accepting the changes removes it.'
      : 'no longer sold; accepting the changes removes it.';
  }
  return 'this item changed since you added it.';
}

/** A failed call as the shopper reads it: the service's words for a 4xx, else "unavailable". */
export function failure(result, what = 'The cart') {
  if (result.status === 0 || result.status >= 500) {
    return `${what} is unavailable right now. Please try again in a moment.`;
  }
  return result.problem?.detail || result.problem?.title || `${what} answered ${result.status}.`;
}

/** What a page shows in place of a cart it could not load, with a way to retry: the kit's
 * "unavailable right now" for a network failure or a 5xx, else the service's own words. */
export function unavailable(result, what = 'Your cart') {
  const message = result.status === 0 || result.status >= 500
    ? down(what)
    : html`<p class="notice" role="alert">${failure(result, what)}</p>`;
  return html`${message}<p><button type="button" class="btn" data-retry>Try again</button></p>`;
}

/** A problem's type slug (`https://agora.dev/problems/cart-not-open` → `cart-not-open`). */
export const problemKind = (result) => `${result.problem?.type || ''}`.split('/').pop();
