// What the cart's elements share: which cart the browser has, the wording of flags and failures.
import { api, cartChanged, money, failed, failure as kitFailure } from 'agora/kit';

/** The cart view in a `/session/cart` answer (a bare cart or `{cart}`). */
export const cartOf = (data) => data?.cart ?? data;

/**
 * The browser's cart (`GET /session/cart`: the user's current cart, or the guest cart of the
 * browser's cookie). Resolves to `{cart}` (null when the browser has none yet) or `{failed}` (the
 * api() result to explain).
 */
export async function browserCart() {
  const result = await api('/session/cart');
  if (result.status === 204) return { cart: null }; // no cart yet
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

/** A failed call as the shopper reads it (the kit's `failure`, about the cart by default). */
export const failure = (result, what = 'The cart') => kitFailure(result, what);

/** What a page shows in place of data it could not load, with "Try again" (the kit's `failed`). */
export const unavailable = (result, what = 'Your cart') => failed(result, what);

/** A problem's type slug (`https://agora.dev/problems/cart-not-open` → `cart-not-open`). */
export const problemKind = (result) => `${result.problem?.type || ''}`.split('/').pop();
