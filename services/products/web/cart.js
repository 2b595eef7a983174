// Adding to the browser's cart from the catalog: the gateway keeps which cart the browser has
// (`/session/cart`: the user's current cart, or the guest cart of an HttpOnly cookie); the line
// goes through the carts API. Owned by the cart domain's API, called here so the catalog does not
// need the cart micro frontend loaded to add a line.
import { api } from 'agora/kit';

/** The cart view in a `/session/cart` answer (a bare cart or `{cart}`). */
const cartOf = (data) => data?.cart ?? data;

/** The browser's cart, created when it has none. Resolves to the api() result of the last call. */
async function ensureCart(fresh = false) {
  if (!fresh) {
    const current = await api('/session/cart');
    // 204: the browser has no cart yet.
    if (current.status !== 204) return current;
  }
  return api('/session/cart', { method: 'POST' });
}

/**
 * Adds `quantity` units of a product. Resolves to `{ok: true, cart}` or `{ok: false, result}` (the
 * api() result to explain). A cart that vanished (an expired guest cart) or was checked out
 * meanwhile is replaced by a new one, once.
 */
export async function addToCart(productId, quantity) {
  let fresh = false;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const session = await ensureCart(fresh);
    if (!session.ok) return { ok: false, result: session };
    const cart = cartOf(session.data);
    const added = await api(`/api/carts/${encodeURIComponent(cart.id)}/items`, {
      method: 'POST',
      body: { product_id: productId, quantity },
    });
    if (added.ok) {
      window.dispatchEvent(new CustomEvent('agora:cart', { detail: added.data }));
      return { ok: true, cart: added.data };
    }
    const gone = added.status === 404
      || (added.status === 409 && `${added.problem?.type}`.endsWith('/cart-not-open'));
    if (!gone) return { ok: false, result: added };
    fresh = true;
  }
  return { ok: false, result: { status: 0 } };
}
