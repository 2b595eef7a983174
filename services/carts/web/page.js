// <cart-page>: the cart's lines at the catalog's current prices, quantities 1–99, removal, totals;
// lines the catalog changed under (a new price, sold out, no longer sold) are flagged and must be
// acknowledged ("Accept changes") before checkout.
import { api, html, money, render, showProblem, submitOnce, title } from 'agora/kit';
import {
  announce, browserCart, failure, flagText, lineName, problemKind, productHref, unavailable,
} from './common.js';

export class CartPage extends HTMLElement {
  connectedCallback() {
    this.addEventListener('click', (event) => this.onClick(event));
    this.load();
  }

  async load() {
    title('Your cart');
    this.setAttribute('aria-busy', 'true');
    render(this, html`<h1 tabindex="-1">Your cart</h1><p class="muted">Loading your cart…</p>`);
    const { cart, failed } = await browserCart();
    if (!this.isConnected) return;
    this.removeAttribute('aria-busy');
    if (failed) {
      render(this, html`<h1 tabindex="-1">Your cart</h1>${unavailable(failed)}`);
      return;
    }
    this.show(cart);
  }

  /** Renders `cart` (null: the browser has none); `said` is a message for the status line. */
  show(cart, said = '') {
    this.cart = cart;
    if (!cart || cart.status !== 'open' || cart.items.length === 0) {
      render(this, html`<h1 tabindex="-1">Your cart</h1>
        <p role="status" class="cart-status">${said}</p>
        <p class="cart-empty">Your cart is empty.</p>
        <p><a href="/">Continue shopping</a></p>`);
      return;
    }
    const review = cart.needs_review.length > 0;
    render(
      this,
      html`<h1 tabindex="-1">Your cart</h1>
        <p role="status" class="cart-status">${said}</p>
        ${review ? reviewNotice(cart) : ''}
        <div class="cart-layout">
          <section class="cart-lines-section" aria-labelledby="cart-lines-heading">
            <h2 id="cart-lines-heading" class="visually-hidden">Items in your cart</h2>
            <ul class="cart-lines">${cart.items.map((line) => lineView(line))}</ul>
          </section>
          <section class="panel cart-summary" aria-labelledby="cart-summary-heading">
            <h2 id="cart-summary-heading">Summary</h2>
            <dl class="cart-totals">
              <div><dt>Items</dt><dd data-testid="cart-item-count">${cart.item_count}</dd></div>
              <div><dt>Total</dt><dd data-testid="cart-total">${cart.total ? money(cart.total.amount, cart.total.currency) : '—'}</dd></div>
            </dl>
            ${review
              ? html`<p class="muted">Accept the changes above to continue to checkout.</p>`
              : html`<p><a class="btn btn-primary" href="/checkout">Proceed to checkout</a></p>`}
            <p><a href="/">Continue shopping</a></p>
          </section>
        </div>`,
    );
    for (const form of this.querySelectorAll('form[data-line]')) {
      submitOnce(form, () => this.setQuantity(form));
    }
  }

  onClick(event) {
    if (event.target.closest('[data-retry]')) {
      this.load();
      return;
    }
    const remove = event.target.closest('[data-remove]');
    if (remove) {
      this.remove(remove, remove.getAttribute('data-remove'));
      return;
    }
    const acknowledge = event.target.closest('[data-acknowledge]');
    if (acknowledge) this.acknowledge(acknowledge);
  }

  /** The path of a call on this cart. */
  path(suffix) {
    return `/api/carts/${encodeURIComponent(this.cart.id)}${suffix}`;
  }

  async setQuantity(form) {
    const product = form.getAttribute('data-line');
    const text = new FormData(form).get('quantity')?.toString().trim() || '';
    const quantity = Number(text);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
      showProblem(form, {
        status: 422,
        detail: 'Choose a quantity from 1 to 99, or remove the item.',
        errors: [{ field: 'quantity', message: 'Choose a whole number from 1 to 99.' }],
      });
      return;
    }
    const result = await api(this.path(`/items/${encodeURIComponent(product)}`), {
      method: 'PUT',
      body: { quantity },
    });
    if (result.status === 422) {
      showProblem(form, result.problem);
      return;
    }
    if (!(await this.after(result, 'Quantity updated.'))) {
      showProblem(form, { status: result.status, detail: failure(result) });
      return;
    }
    this.querySelector(`form[data-line="${CSS.escape(product)}"] input`)?.focus();
  }

  async remove(button, product) {
    if (button.disabled) return;
    button.disabled = true;
    const name = lineName(this.cart.items.find((l) => l.product_id === product) || {});
    const result = await api(this.path(`/items/${encodeURIComponent(product)}`), { method: 'DELETE' });
    if (!(await this.after(result, `Removed ${name}.`))) {
      button.disabled = false;
      this.say(failure(result));
      return;
    }
    this.querySelector('h1')?.focus();
  }

  async acknowledge(button) {
    if (button.disabled) return;
    button.disabled = true;
    const before = this.cart;
    const result = await api(this.path('/acknowledge'), { method: 'POST' });
    if (!result.ok) {
      button.disabled = false;
      if (!(await this.after(result, ''))) this.say(failure(result));
      return;
    }
    const flagged = before.items.filter((l) => before.needs_review.includes(l.product_id));
    const removed = flagged.filter((l) => l.flags.some((f) => f.kind === 'unavailable')).length;
    const repriced = flagged.length - removed;
    const parts = [];
    if (repriced) parts.push(`${repriced} new ${repriced === 1 ? 'price' : 'prices'} accepted`);
    if (removed) parts.push(`${removed} ${removed === 1 ? 'item' : 'items'} that cannot be ordered removed`);
    const cart = result.data.cart;
    announce(cart);
    this.show(cart, `Changes accepted: ${parts.join(', ') || 'nothing left to review'}.`);
    this.querySelector('h1')?.focus();
  }

  /**
   * After a change: shows the cart it answered (true), or reloads when the cart is no longer open
   * or gone (true, with a message); false for a failure the caller explains.
   */
  async after(result, said) {
    if (result.ok) {
      announce(result.data);
      this.show(result.data, said);
      return true;
    }
    if (result.status === 404 || (result.status === 409 && problemKind(result) === 'cart-not-open')) {
      const { cart } = await browserCart();
      this.show(cart || null, 'Your cart changed meanwhile (it may have been ordered); this is the cart as it is now.');
      announce(cart || null);
      return true;
    }
    return false;
  }

  say(message) {
    const status = this.querySelector('.cart-status');
    if (status) status.textContent = message;
  }
}

function reviewNotice(cart) {
  const n = cart.needs_review.length;
  return html`<section class="notice cart-review" aria-labelledby="cart-review-heading">
    <h2 id="cart-review-heading">${n === 1 ? 'An item changed' : `${n} items changed`} since you added ${n === 1 ? 'it' : 'them'}</h2>
    <p>New prices are shown on the items below; items that cannot be ordered any more are removed when
      you accept. Accept the changes to continue to checkout.</p>
    <button type="button" class="btn btn-primary" data-acknowledge>Accept changes</button>
  </section>`;
}

function lineView(line) {
  const name = lineName(line);
  const id = `cart-qty-${line.product_id}`;
  const flagged = line.flags.length > 0;
  const unavailable = line.flags.some((f) => f.kind === 'unavailable');
  return html`<li class="card cart-line ${flagged ? 'is-flagged' : ''}" data-testid="cart-line">
    <div class="cart-line-main">
      <h3 class="cart-line-name">${line.name ? html`<a href="${productHref(line.product_id)}">${name}</a>` : name}</h3>
      ${line.unit_price ? html`<p class="cart-unit">${money(line.unit_price.amount, line.unit_price.currency)} each</p>` : ''}
      ${line.flags.map((f) => html`<p class="cart-flag cart-flag-${f.kind}"><strong>${f.kind === 'price_changed' ? 'New price' : 'Unavailable'}:</strong> ${flagText(f)}</p>`)}
    </div>
    <form class="cart-quantity" data-line="${line.product_id}" novalidate>
      <label for="${id}">Quantity of ${name}</label>
      <div class="cart-quantity-row">
        <input id="${id}" name="quantity" type="number" inputmode="numeric" min="1" max="99" step="1" value="${line.quantity}" required ${unavailable ? 'disabled' : ''}>
        <button type="submit" class="btn" ${unavailable ? 'disabled' : ''}>Update<span class="visually-hidden"> quantity of ${name}</span></button>
      </div>
      <p role="alert" class="form-alert"></p>
    </form>
    <p class="cart-line-total">${line.line_total && !unavailable ? money(line.line_total.amount, line.line_total.currency) : ''}</p>
    <button type="button" class="btn btn-danger cart-remove" data-remove="${line.product_id}">Remove<span class="visually-hidden"> ${name}</span></button>
  </li>`;
}
