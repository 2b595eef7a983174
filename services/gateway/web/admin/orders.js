// Orders: everyone's orders with the API's filters, one order's detail, ship / deliver / cancel.
import {
  Page, call, html, render, money, announce, frame, unavailable, isDown, problemText, query, when,
  words, short, confirmAction, takeFlash, tone, downText,
} from './lib.js';

export const STATUSES = ['pending', 'confirmed', 'rejected', 'payment_failed', 'shipped', 'delivered', 'cancelled'];

/** The message for a failed action: the problem's own words when it has them. */
function failure(answer, service, what) {
  return isDown(answer) ? downText(answer, service) : problemText(answer, what);
}

class AdminOrders extends Page {
  async load(cursor) {
    if (!cursor) {
      this.items = [];
      if (!this.filters) {
        // A link may open the list filtered (`/admin/orders?user_id=…`).
        const search = new URLSearchParams(location.search);
        this.filters = { status: search.get('status') || '', user_id: search.get('user_id') || '' };
      }
      const f = this.filters;
      render(this, frame('Orders', html`
        <form class="admin-filters" aria-label="Filter orders">
          <div class="field">
            <label for="orders-status">Status</label>
            <select id="orders-status" name="status">
              <option value="">Any status</option>
              ${STATUSES.map((s) => html`<option value="${s}" ${f.status === s ? html`selected` : ''}>${words(s)}</option>`)}
            </select>
          </div>
          <div class="field">
            <label for="orders-user">Customer (user id)</label>
            <input id="orders-user" name="user_id" value="${f.user_id || ''}">
          </div>
          <button type="submit" class="btn-primary">Filter orders</button>
        </form>
        <div class="admin-results"></div>`));
    }
    const results = this.querySelector('.admin-results');
    const answer = await call(`/orders${query({ ...this.filters, limit: 25, cursor })}`);
    if (!answer.ok) {
      render(results, isDown(answer) ? unavailable('Orders') : html`<p role="alert">${problemText(answer, 'The orders could not be listed')}</p>`);
      return;
    }
    this.items = this.items.concat(answer.data.items);
    this.next = answer.data.next_cursor;
    render(results, this.items.length === 0 ? html`<p>No orders match.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Orders">
        <table>
          <caption>Orders, newest first (${this.items.length}${this.next ? '+' : ''})</caption>
          <thead><tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Customer</th><th scope="col">Status</th><th scope="col" class="num">Items</th><th scope="col" class="num">Total</th></tr></thead>
          <tbody>
            ${this.items.map((o) => html`<tr>
              <th scope="row"><a href="/admin/orders/${encodeURIComponent(o.id)}" title="${o.id}" class="admin-idlink"><span class="visually-hidden">Order </span>${short(o.id)}</a></th>
              <td>${when(o.created_at)}</td>
              <td><a href="/admin/users/${encodeURIComponent(o.user_id)}" title="${o.user_id}">${short(o.user_id)}</a></td>
              <td><span class="${tone(o.status)}">${words(o.status)}</span></td>
              <td class="num">${o.items.reduce((n, l) => n + l.quantity, 0)}</td>
              <td class="num">${money(o.total.amount, o.total.currency)}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      ${this.next ? html`<p><button type="button" data-action="more">More orders</button></p>` : ''}`);
  }

  onSubmit(event) {
    event.preventDefault();
    const data = new FormData(event.target);
    this.filters = { status: data.get('status'), user_id: String(data.get('user_id') || '').trim() };
    this.load();
  }

  onAction(action) {
    if (action === 'more') this.load(this.next);
  }
}

class AdminOrder extends Page {
  async load() {
    const id = this.getAttribute('order-id');
    const answer = await call(`/orders/${encodeURIComponent(id)}`);
    if (!answer.ok) {
      render(this, frame('Order', isDown(answer) ? unavailable('Orders') : html`<p>${problemText(answer, 'No such order')}</p><p><a href="/admin/orders">All orders</a></p>`));
      return;
    }
    this.show(answer.data);
    const flash = takeFlash();
    if (flash) announce(this, flash);
  }

  show(o) {
    this.order = o;
    const a = o.shipping_address;
    const canShip = o.status === 'confirmed';
    const canDeliver = o.status === 'shipped';
    const canCancel = o.status === 'pending' || o.status === 'confirmed';
    render(this, frame(`Order ${short(o.id)}`, html`
      <dl class="admin-facts">
        <div><dt>Order id</dt><dd class="mono">${o.id}</dd></div>
        <div><dt>Status</dt><dd><span class="${tone(o.status)}">${words(o.status)}</span></dd></div>
        <div><dt>Placed</dt><dd>${when(o.created_at)}</dd></div>
        <div><dt>Customer</dt><dd><a href="/admin/users/${encodeURIComponent(o.user_id)}" class="mono">${o.user_id}</a></dd></div>
        <div><dt>Total</dt><dd>${money(o.total.amount, o.total.currency)}</dd></div>
        <div><dt>Payment</dt><dd>${o.payment_id ? html`<a href="/admin/payments/${encodeURIComponent(o.payment_id)}" class="mono">${o.payment_id}</a>` : 'none'}</dd></div>
        ${o.failure ? html`<div><dt>Failure</dt><dd>${o.failure}</dd></div>` : ''}
      </dl>
      <div class="admin-actions" role="group" aria-label="Order actions">
        ${canShip ? html`<button type="button" data-action="ship">Ship order</button>` : ''}
        ${canDeliver ? html`<button type="button" data-action="deliver">Mark delivered</button>` : ''}
        ${canCancel ? html`<button type="button" class="btn-danger" data-action="cancel">Cancel order</button>` : ''}
        ${!canShip && !canDeliver && !canCancel ? html`<p>No action is possible on a ${words(o.status)} order.</p>` : ''}
      </div>
      <h2>Items</h2>
      <div class="table-wrap" tabindex="0" role="region" aria-label="Items">
        <table>
          <caption>Items of the order</caption>
          <thead><tr><th scope="col">Product</th><th scope="col">SKU</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Unit price</th><th scope="col" class="num">Line total</th></tr></thead>
          <tbody>
            ${o.items.map((l) => html`<tr>
              <th scope="row"><a href="/admin/products/${encodeURIComponent(l.product_id)}">${l.name}</a></th>
              <td>${l.sku}</td>
              <td class="num">${l.quantity}</td>
              <td class="num">${money(l.unit_price.amount, l.unit_price.currency)}</td>
              <td class="num">${money(l.line_total.amount, l.line_total.currency)}</td>
            </tr>`)}
          </tbody>
          <tfoot><tr><th scope="row" colspan="4">Total</th><td class="num">${money(o.total.amount, o.total.currency)}</td></tr></tfoot>
        </table>
      </div>
      <h2>Shipping address</h2>
      <address class="admin-address">${a.name}<br>${a.line1}<br>${a.line2 ? html`${a.line2}<br>` : ''}${a.postal_code} ${a.city}<br>${a.country}</address>
      <h2>History</h2>
      <div class="table-wrap" tabindex="0" role="region" aria-label="History">
        <table>
          <caption>Status history</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Status</th><th scope="col">Note</th></tr></thead>
          <tbody>
            ${o.status_history.map((h) => html`<tr><td>${when(h.at)}</td><td>${words(h.status)}</td><td>${h.note || ''}</td></tr>`)}
          </tbody>
        </table>
      </div>
      <p><a href="/admin/orders">All orders</a></p>`));
  }

  async onAction(action, target) {
    const o = this.order;
    const asks = {
      ship: [`Ship order ${short(o.id)}? Its payment of ${money(o.total.amount, o.total.currency)} is captured first.`, 'Ship order', 'shipped'],
      deliver: [`Mark order ${short(o.id)} delivered?`, 'Mark delivered', 'marked delivered'],
      cancel: [`Cancel order ${short(o.id)}? The payment is voided or refunded and the stock given back.`, 'Cancel order', 'cancelled'],
    };
    const [question, label, done] = asks[action] || [];
    if (!question || !(await confirmAction(question, label))) return;
    target.disabled = true;
    const answer = await call(`/orders/${encodeURIComponent(o.id)}/${action}`, { method: 'POST' });
    if (answer.ok) {
      this.show(answer.data);
      announce(this, answer.status === 202 ? `Order ${short(o.id)} is being cancelled.` : `Order ${short(o.id)} ${done}.`);
    } else {
      target.disabled = false;
      announce(this, failure(answer, 'Orders', `The order could not be ${done}`), 'bad');
    }
  }
}

customElements.define('admin-orders', AdminOrders);
customElements.define('admin-order', AdminOrder);
