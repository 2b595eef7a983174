// <cart-badge>: the header's link to the cart with its item count, kept current by `agora:cart`
// (the cart changed) and `agora:session` (log-in merges a guest cart; log-out leaves it).
import { html, render } from 'agora/kit';
import { browserCart } from './common.js';

export class CartBadge extends HTMLElement {
  connectedCallback() {
    this.onCart = (event) => {
      const cart = event.detail;
      if (cart && typeof cart.item_count === 'number' && cart.status === 'open') {
        this.show(cart.item_count);
      } else {
        // No cart in the event (after checkout the cart closes a moment later, when orders'
        // confirmation reaches carts): read it now and once more shortly.
        this.refresh();
        clearTimeout(this.later);
        this.later = setTimeout(() => this.refresh(), 2000);
      }
    };
    this.onSession = () => this.refresh();
    window.addEventListener('agora:cart', this.onCart);
    window.addEventListener('agora:session', this.onSession);
    this.show(null);
    this.refresh();
  }

  disconnectedCallback() {
    window.removeEventListener('agora:cart', this.onCart);
    window.removeEventListener('agora:session', this.onSession);
    clearTimeout(this.later);
  }

  async refresh() {
    const mine = (this.reads = (this.reads || 0) + 1);
    const { cart, failed } = await browserCart();
    if (mine !== this.reads || !this.isConnected) return;
    // An unreachable cart leaves the link without a count: the cart page explains.
    if (failed) this.show(null);
    else this.show(cart && cart.status === 'open' ? cart.item_count : 0);
  }

  /** The link; `count` null when it is not known. */
  show(count) {
    const items = count === 1 ? 'item' : 'items';
    render(
      this,
      count === null
        ? html`<a class="cart-badge" href="/cart">Cart</a>`
        : html`<a class="cart-badge" href="/cart">Cart <span class="cart-badge-count">${count}</span><span class="visually-hidden"> ${items}</span></a>`,
    );
  }
}
