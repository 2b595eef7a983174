// Micro frontend "orders" (served by orders at /ui/orders/): the signed-in user's order history
// and one order's detail with cancellation. Defines its custom elements and nothing else at import
// time (docs/frontend.md).
import { api, html, money, render, title, unavailable as unavailableBlock } from 'agora/kit';

const PAGE = 10;
/** While an order is being placed or cancelled, how often and how long its page asks again. */
const POLL_MS = 2000;
const POLL_TIMES = 15;

const STATUS = {
  pending: 'Being processed',
  confirmed: 'Confirmed',
  rejected: 'Rejected',
  payment_failed: 'Payment failed',
  shipped: 'Shipped',
  delivered: 'Delivered',
  cancelled: 'Cancelled',
};

const PAYMENT = {
  pending: 'Being authorized',
  authorized: 'Authorized (you are charged when the order ships)',
  declined: 'Declined',
  failed: 'Failed',
  capture_pending: 'Being charged',
  captured: 'Charged',
  void_pending: 'Authorization being released',
  voided: 'Authorization released (not charged)',
  refunded: 'Refunded',
};

const CANCELLED = 'The order is cancelled. Your payment has been released and the items are back in stock.';

/** The payment simulator's decline codes (Stripe's), as a person reads them. */
const DECLINES = {
  generic_decline: 'the card was declined',
  card_declined: 'the card was declined',
  insufficient_funds: 'the card has insufficient funds',
  expired_card: 'the card has expired',
  processing_error: 'the card could not be processed; try again in a little while',
};
const reason = (text) => DECLINES[text] ?? text;

const statusLabel = (s) => STATUS[s] ?? s;
const CANCELLABLE = new Set(['pending', 'confirmed']);

function when(iso, style = { dateStyle: 'medium', timeStyle: 'short' }) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : new Intl.DateTimeFormat(undefined, style).format(date);
}

/**
 * A short order reference: the id's last characters (a UUIDv7 starts with a timestamp shared by
 * neighbouring orders), the same the admin shows.
 */
const shortId = (id) => String(id).slice(-8);

const amount = (m) => (m && Number.isFinite(m.amount) ? money(m.amount, m.currency) : '');

const TONE = {
  pending: 'badge--warn',
  confirmed: '',
  shipped: 'badge--ok',
  delivered: 'badge--ok',
  rejected: 'badge--bad',
  payment_failed: 'badge--bad',
  cancelled: '',
};

const badge = (status) => html`<span class="badge ${TONE[status] ?? ''}" data-testid="order-status">${statusLabel(status)}</span>`;

function signedOut(element, heading, next) {
  render(element, html`<h1>${heading}</h1>
    <p class="orders-signin">You are not signed in.
      <a href="/login?next=${encodeURIComponent(next)}">Log in to see your orders</a>.</p>`);
}

function unavailable(element, heading, what, retry) {
  render(element, html`<h1>${heading}</h1>
    ${unavailableBlock(what)}
    <p><button type="button" class="btn" data-retry>Try again</button></p>`);
  element.querySelector('[data-retry]').addEventListener('click', retry);
}

// ---------------------------------------------------------------------------------------------
// <orders-history>: GET /api/orders, newest first; "Show older orders" follows next_cursor.
class OrdersHistory extends HTMLElement {
  connectedCallback() {
    this.orders = [];
    this.cursor = null;
    this.load();
  }

  async load() {
    title('Your orders');
    render(this, html`<h1>Your orders</h1><p class="muted">Loading your orders…</p>`);
    const res = await api(`/api/orders?limit=${PAGE}`);
    if (res.status === 401) return signedOut(this, 'Your orders', '/orders');
    if (!res.ok) return unavailable(this, 'Your orders', 'The order history', () => this.load());
    this.orders = res.data?.items ?? [];
    this.cursor = res.data?.next_cursor ?? null;
    this.show();
  }

  async more(button) {
    button.disabled = true;
    button.textContent = 'Loading…';
    const res = await api(`/api/orders?limit=${PAGE}&cursor=${encodeURIComponent(this.cursor)}`);
    if (!res.ok) {
      button.disabled = false;
      button.textContent = 'Show older orders';
      this.querySelector('[data-more-error]').textContent =
        res.status === 401 ? 'Your session has ended; log in again.' : 'Older orders are unavailable right now. Try again.';
      return;
    }
    const first = this.orders.length;
    this.orders = this.orders.concat(res.data?.items ?? []);
    this.cursor = res.data?.next_cursor ?? null;
    this.show();
    // Keyboard users land on the first order just loaded, not back at the top.
    this.querySelectorAll('tbody a')[first]?.focus();
  }

  show() {
    if (!this.orders.length) {
      render(this, html`<h1>Your orders</h1>
        <p>You have not ordered anything yet. <a href="/">Start shopping</a>.</p>`);
      return;
    }
    render(this, html`<h1>Your orders</h1>
      <table class="orders-table">
        <caption class="visually-hidden">Your orders, newest first</caption>
        <thead><tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Status</th>
          <th scope="col">Items</th><th scope="col" class="num">Total</th></tr></thead>
        <tbody>${this.orders.map((o) => html`<tr>
          <th scope="row" data-label="Order"><a href="/orders/${o.id}" aria-label="Order ${shortId(o.id)}, placed ${when(o.created_at)}">${shortId(o.id)}</a></th>
          <td data-label="Placed"><time datetime="${o.created_at}">${when(o.created_at)}</time></td>
          <td data-label="Status">${badge(o.status)}</td>
          <td data-label="Items">${(o.items ?? []).reduce((n, l) => n + (l.quantity ?? 0), 0)}</td>
          <td data-label="Total" class="num">${amount(o.total)}</td>
        </tr>`)}</tbody>
      </table>
      <p class="orders-more-error" role="alert" data-more-error></p>
      ${this.cursor ? html`<p class="pagination"><button type="button" class="btn" data-more>Show older orders</button></p>` : ''}`);
    this.querySelector('[data-more]')?.addEventListener('click', (e) => this.more(e.currentTarget));
  }
}

// ---------------------------------------------------------------------------------------------
// <orders-detail order-id>: GET /api/orders/{id} (and its payment); "Cancel order" with a
// confirmation, POST /api/orders/{id}/cancel.
class OrdersDetail extends HTMLElement {
  static get observedAttributes() {
    return ['order-id'];
  }

  connectedCallback() {
    this.polls = 0;
    this.notice = null;
    this.cancelling = false;
    this.load();
  }

  disconnectedCallback() {
    clearTimeout(this.timer);
  }

  attributeChangedCallback(_name, old, value) {
    if (this.isConnected && old !== null && old !== value) {
      this.polls = 0;
      this.notice = null;
      this.cancelling = false;
      this.load();
    }
  }

  get orderId() {
    return this.getAttribute('order-id') ?? '';
  }

  async load({ quiet = false } = {}) {
    clearTimeout(this.timer);
    const id = this.orderId;
    if (!quiet) render(this, html`<h1>Order</h1><p class="muted">Loading the order…</p>`);
    const res = await api(`/api/orders/${encodeURIComponent(id)}`);
    if (id !== this.orderId || !this.isConnected) return;
    if (res.status === 401) return signedOut(this, 'Order', `/orders/${id}`);
    if (res.status === 404) {
      render(this, html`<h1>Order not found</h1>
        <p>There is no such order in your account. <a href="/orders">See your orders</a>.</p>`);
      return;
    }
    if (!res.ok) return unavailable(this, 'Order', 'This order', () => this.load());
    this.order = res.data;
    title(`Order ${shortId(this.order.id)}`);
    this.payment = await this.loadPayment(this.order);
    if (id !== this.orderId || !this.isConnected) return;
    if (this.cancelling && this.order.status === 'cancelled') {
      this.cancelling = false;
      this.notice = { ok: true, text: CANCELLED };
    }
    this.show();
    // Placing and cancelling go on in the background: ask again for a while.
    const moving = this.order.status === 'pending' || this.cancelling;
    if (moving && this.polls < POLL_TIMES) {
      this.polls += 1;
      this.timer = setTimeout(() => this.load({ quiet: true }), POLL_MS);
    }
  }

  /** The order's payment, `null` when it has none, or `{unavailable: true}`. */
  async loadPayment(order) {
    if (!order.payment_id) return null;
    const res = await api(`/api/payments/${encodeURIComponent(order.payment_id)}`);
    return res.ok ? res.data : { unavailable: true };
  }

  show() {
    const o = this.order;
    const address = o.shipping_address ?? {};
    const history = [...(o.status_history ?? [])].sort((a, b) => String(a.at).localeCompare(String(b.at)));
    const cancellable = CANCELLABLE.has(o.status) && !this.cancelling;
    render(this, html`<p class="orders-back"><a href="/orders">All orders</a></p>
      <h1>Order ${shortId(o.id)}</h1>
      <p class="orders-summary"><span>Placed <time datetime="${o.created_at}">${when(o.created_at)}</time></span> ${badge(o.status)}</p>
      <div role="status" class="${this.notice?.ok ? 'success' : 'notice'} orders-notice" tabindex="-1" data-notice>${this.notice?.text ?? ''}</div>
      ${failureText(o) ? html`<p class="notice orders-failure">${failureText(o)}</p>` : ''}

      <section aria-labelledby="orders-items-title">
        <h2 id="orders-items-title">Items</h2>
        <table class="orders-table orders-lines">
          <thead><tr><th scope="col">Product</th><th scope="col" class="num">Price</th>
            <th scope="col" class="num">Quantity</th><th scope="col" class="num">Subtotal</th></tr></thead>
          <tbody>${(o.items ?? []).map((l) => html`<tr>
            <th scope="row" data-label="Product"><a href="/p/${l.product_id}">${l.name}</a>
              <span class="orders-sku">SKU ${l.sku}</span></th>
            <td data-label="Price" class="num">${amount(l.unit_price)}</td>
            <td data-label="Quantity" class="num">${l.quantity}</td>
            <td data-label="Subtotal" class="num">${amount(l.line_total)}</td>
          </tr>`)}</tbody>
          <tfoot><tr><th scope="row" colspan="3">Total</th>
            <td class="num" data-testid="order-total">${amount(o.total)}</td></tr></tfoot>
        </table>
      </section>

      <div class="orders-columns">
        <section aria-labelledby="orders-address-title">
          <h2 id="orders-address-title">Shipping address</h2>
          <address class="orders-address">${address.name}<br>${address.line1}<br>
            ${address.line2 ? html`${address.line2}<br>` : ''}${address.postal_code} ${address.city}<br>${address.country}</address>
        </section>

        <section aria-labelledby="orders-payment-title">
          <h2 id="orders-payment-title">Payment</h2>
          ${paymentView(o, this.payment)}
        </section>
      </div>

      <section aria-labelledby="orders-history-title">
        <h2 id="orders-history-title">Status history</h2>
        <ol class="orders-timeline">${history.map((h) => html`<li>
          <span class="orders-timeline-status">${h.status === 'pending' ? 'Placed' : statusLabel(h.status)}</span>
          <time datetime="${h.at}">${when(h.at, { dateStyle: 'medium', timeStyle: 'medium' })}</time>
          ${h.note && h.note !== h.status ? html`<span class="orders-timeline-note">${reason(h.note)}</span>` : ''}
        </li>`)}</ol>
      </section>

      ${cancellable ? html`<section aria-labelledby="orders-cancel-title" class="orders-cancel">
        <h2 id="orders-cancel-title">Cancel</h2>
        <p>You can cancel this order until it ships. Your payment is released and nothing is charged.</p>
        <button type="button" class="btn btn-danger" data-cancel>Cancel order</button>
        <div class="orders-confirm" data-confirm hidden>
          <p id="orders-confirm-question" tabindex="-1"><strong>Cancel order ${shortId(o.id)}?</strong> This cannot be undone.</p>
          <button type="button" class="btn btn-danger" data-confirm-yes>Yes, cancel this order</button>
          <button type="button" class="btn" data-confirm-no>No, keep it</button>
        </div>
      </section>` : ''}`);
    this.wire();
  }

  wire() {
    const ask = this.querySelector('[data-cancel]');
    if (!ask) return;
    const confirm = this.querySelector('[data-confirm]');
    ask.addEventListener('click', () => {
      ask.hidden = true;
      confirm.hidden = false;
      this.querySelector('#orders-confirm-question').focus();
    });
    this.querySelector('[data-confirm-no]').addEventListener('click', () => {
      confirm.hidden = true;
      ask.hidden = false;
      ask.focus();
    });
    this.querySelector('[data-confirm-yes]').addEventListener('click', (e) => this.cancel(e.currentTarget));
  }

  async cancel(button) {
    for (const b of this.querySelectorAll('[data-confirm] button')) b.disabled = true;
    button.textContent = 'Cancelling…';
    const res = await api(`/api/orders/${encodeURIComponent(this.order.id)}/cancel`, { method: 'POST' });
    let notice;
    let ok = false;
    if (res.status === 200) {
      notice = CANCELLED;
      ok = true;
    } else if (res.status === 202) {
      this.cancelling = true;
      this.polls = 0;
      notice = 'The order is being cancelled; this page updates when it is done.';
    } else if (res.status === 409) {
      notice = `This order can no longer be cancelled. ${res.problem?.detail ?? 'It has changed meanwhile.'}`;
    } else if (res.status === 401) {
      notice = 'Your session has ended; log in again to cancel the order.';
    } else if (res.status === 0 || res.status >= 500) {
      notice = 'Cancelling is unavailable right now. Please try again in a moment.';
    } else {
      notice = res.problem?.detail ?? 'The order could not be cancelled.';
    }
    this.notice = { ok, text: notice };
    await this.load({ quiet: true });
    // The confirmation is gone: focus the outcome so it is read out and the keyboard stays here.
    this.querySelector('[data-notice]')?.focus();
  }
}

/** Why a failed order failed; nothing for any other (a cancelled one's history says it). */
function failureText(order) {
  if (!order.failure) return '';
  if (order.status === 'payment_failed') return `The payment failed: ${reason(order.failure)}. Nothing was charged.`;
  if (order.status === 'rejected') return `The order was rejected: ${reason(order.failure)}. Nothing was charged.`;
  return '';
}

function paymentView(order, payment) {
  if (!order.payment_id) {
    return html`<p>${order.status === 'pending' ? 'Not authorized yet.' : 'Nothing was charged.'}</p>`;
  }
  if (!payment || payment.unavailable) {
    return html`<p class="muted">Payment details are unavailable right now.</p>`;
  }
  return html`<dl class="orders-payment">
    <dt>State</dt><dd data-testid="payment-state">${PAYMENT[payment.status] ?? payment.status}</dd>
    <dt>Amount</dt><dd>${money(payment.amount, payment.currency)}</dd>
    ${payment.captured_amount > 0 ? html`<dt>Charged</dt><dd>${money(payment.captured_amount, payment.currency)}</dd>` : ''}
    ${payment.refunded_amount > 0 ? html`<dt>Refunded</dt><dd>${money(payment.refunded_amount, payment.currency)}</dd>` : ''}
    ${payment.decline_message ? html`<dt>Declined</dt><dd>${payment.decline_message}</dd>` : ''}
  </dl>`;
}

const elements = { 'orders-history': OrdersHistory, 'orders-detail': OrdersDetail };
for (const [name, element] of Object.entries(elements)) {
  // A second copy of this module (another URL) must not throw.
  if (!customElements.get(name)) customElements.define(name, element);
}
