// The cart micro frontend (docs/frontend.md): the header's cart badge, the cart page and checkout.
// Defines its elements and nothing else at import time.
import { CartBadge } from './badge.js';
import { CartCheckout } from './checkout.js';
import { CartPage } from './page.js';

const elements = {
  'cart-badge': CartBadge,
  'cart-page': CartPage,
  'cart-checkout': CartCheckout,
};

for (const [name, element] of Object.entries(elements)) {
  if (!customElements.get(name)) customElements.define(name, element);
}
