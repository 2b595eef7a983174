// Payments: the payments of the latest orders (or of one order), one payment, refunds.
import {
  Page, call, html, render, money, showProblem, showFailure, clearProblem, announce, frame,
  unavailable, isDown, problemText, query, when, words, short, confirmAction, newKey, toMajor, toMinor, tone,
} from './lib.js';

function paymentRows(items) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label="Payments">
    <table>
      <caption>Payments (${items.length})</caption>
      <thead><tr><th scope="col">Payment</th><th scope="col">Order</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col" class="num">Amount</th><th scope="col" class="num">Captured</th><th scope="col" class="num">Refunded</th></tr></thead>
      <tbody>
        ${items.map((p) => html`<tr>
          <th scope="row"><a href="/admin/payments/${encodeURIComponent(p.id)}" title="${p.id}" class="admin-idlink"><span class="visually-hidden">Payment </span>${short(p.id)}</a></th>
          <td><a href="/admin/orders/${encodeURIComponent(p.order_id)}" title="${p.order_id}">${short(p.order_id)}</a></td>
          <td>${when(p.created_at)}</td>
          <td><span class="${tone(p.status)}">${words(p.status)}</span></td>
          <td class="num">${money(p.amount, p.currency)}</td>
          <td class="num">${money(p.captured_amount, p.currency)}</td>
          <td class="num">${money(p.refunded_amount, p.currency)}</td>
        </tr>`)}
      </tbody>
    </table>
  </div>`;
}

class AdminPayments extends Page {
  async load() {
    render(this, frame('Payments', html`
      <form class="admin-filters" aria-label="Payments of an order">
        <div class="field">
          <label for="payments-order">Order id</label>
          <input id="payments-order" name="order_id" value="${this.orderId || ''}" aria-describedby="payments-order-hint">
          <p id="payments-order-hint" class="hint">Empty shows the payments of the latest 20 orders.</p>
        </div>
        <button type="submit" class="btn-primary">Show payments</button>
      </form>
      <div class="admin-results"><p>Loading…</p></div>`));
    const results = this.querySelector('.admin-results');
    // The payments API lists by order, so the latest orders say which payments to show.
    let orderIds;
    if (this.orderId) {
      orderIds = [this.orderId];
    } else {
      const orders = await call('/orders?limit=20');
      if (!orders.ok) {
        render(results, isDown(orders) ? unavailable('Orders') : html`<p role="alert">${problemText(orders, 'The latest orders could not be read')}</p>`);
        return;
      }
      orderIds = orders.data.items.map((o) => o.id);
    }
    const answers = await Promise.all(orderIds.map((id) => call(`/payments${query({ order_id: id })}`)));
    const down = answers.find((a) => isDown(a));
    if (down) {
      render(results, unavailable('Payments'));
      return;
    }
    const bad = answers.find((a) => !a.ok);
    if (bad) {
      render(results, html`<p role="alert">${problemText(bad, 'The payments could not be read')}</p>`);
      return;
    }
    const items = answers.flatMap((a) => a.data.items);
    render(results, items.length === 0 ? html`<p>No payments${this.orderId ? ' for this order' : ''}.</p>` : paymentRows(items));
  }

  onSubmit(event) {
    event.preventDefault();
    this.orderId = String(new FormData(event.target).get('order_id') || '').trim();
    this.load();
  }
}

class AdminPayment extends Page {
  async load() {
    const id = encodeURIComponent(this.getAttribute('payment-id'));
    const [payment, refunds, calls] = await Promise.all([
      call(`/payments/${id}`), call(`/payments/${id}/refunds`), call(`/payments/${id}/gateway-calls`),
    ]);
    if (!payment.ok) {
      render(this, frame('Payment', isDown(payment) ? unavailable('Payments') : html`<p>${problemText(payment, 'No such payment')}</p><p><a href="/admin/payments">Payments</a></p>`));
      return;
    }
    const p = payment.data;
    this.payment = p;
    this.key = this.key || newKey();
    const refundable = p.captured_amount - p.refunded_amount;
    render(this, frame(`Payment ${short(p.id)}`, html`
      <dl class="admin-facts">
        <div><dt>Payment id</dt><dd class="mono">${p.id}</dd></div>
        <div><dt>Order</dt><dd><a href="/admin/orders/${encodeURIComponent(p.order_id)}" class="mono">${p.order_id}</a></dd></div>
        <div><dt>Customer</dt><dd><a href="/admin/users/${encodeURIComponent(p.customer_id)}" class="mono">${p.customer_id}</a></dd></div>
        <div><dt>Status</dt><dd><span class="${tone(p.status)}">${words(p.status)}</span></dd></div>
        <div><dt>Amount</dt><dd>${money(p.amount, p.currency)}</dd></div>
        <div><dt>Captured</dt><dd>${money(p.captured_amount, p.currency)}</dd></div>
        <div><dt>Refunded</dt><dd>${money(p.refunded_amount, p.currency)}</dd></div>
        <div><dt>Created</dt><dd>${when(p.created_at)}</dd></div>
        ${p.decline_code ? html`<div><dt>Declined</dt><dd>${p.decline_code}${p.decline_message ? `: ${p.decline_message}` : ''}</dd></div>` : ''}
      </dl>
      <h2>Refund</h2>
      ${refundable > 0 ? html`
      <form class="form admin-form" novalidate aria-label="Refund">
        <p role="alert" class="form-alert"></p>
        <div class="field">
          <label for="refund-amount">Amount to refund (${p.currency})</label>
          <input id="refund-amount" name="amount" inputmode="decimal" required value="${toMajor(refundable, p.currency)}" aria-describedby="refund-amount-hint">
          <p id="refund-amount-hint" class="hint">At most ${money(refundable, p.currency)} (captured less refunded).</p>
        </div>
        <div class="field">
          <label for="refund-reason">Reason (optional)</label>
          <input id="refund-reason" name="reason" maxlength="200">
        </div>
        <button type="submit" class="btn-danger">Refund payment</button>
      </form>` : html`<p>Nothing to refund: ${p.captured_amount === 0 ? 'no amount was captured' : 'everything captured was refunded'}.</p>`}
      <h2>Refunds</h2>
      ${!refunds.ok ? unavailable('The refunds') : refunds.data.items.length === 0 ? html`<p>No refunds.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Refunds">
        <table>
          <caption>Refunds of this payment</caption>
          <thead><tr><th scope="col">When</th><th scope="col" class="num">Amount</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Failure</th></tr></thead>
          <tbody>${refunds.data.items.map((r) => html`<tr><td>${when(r.created_at)}</td><td class="num">${money(r.amount, p.currency)}</td><td>${words(r.status)}</td><td>${r.reason || ''}</td><td>${r.failure || ''}</td></tr>`)}</tbody>
        </table>
      </div>`}
      <h2>Gateway calls</h2>
      ${!calls.ok ? unavailable('The gateway audit log') : calls.data.length === 0 ? html`<p>No gateway calls.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Gateway calls">
        <table>
          <caption>Calls to the payment gateway, oldest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Operation</th><th scope="col">Phase</th><th scope="col">Outcome</th></tr></thead>
          <tbody>${calls.data.map((c) => html`<tr><td>${when(c.at)}</td><td>${c.operation}</td><td>${c.phase}</td><td>${c.outcome}</td></tr>`)}</tbody>
        </table>
      </div>`}
      <p><a href="/admin/payments">Payments</a></p>`));
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    const p = this.payment;
    const refundable = p.captured_amount - p.refunded_amount;
    clearProblem(form);
    announce(this, '');
    const amount = toMinor(data.get('amount'), p.currency);
    if (amount === null || amount <= 0 || amount > refundable) {
      showProblem(form, {
        detail: 'Please correct the field marked below.',
        errors: [{ field: 'amount', message: `Enter an amount above zero and at most ${money(refundable, p.currency)}` }],
      });
      return;
    }
    this.busy(form, async () => {
      if (!(await confirmAction(`Refund ${money(amount, p.currency)} of payment ${short(p.id)}? The customer gets the money back.`, 'Refund payment'))) return;
      const reason = String(data.get('reason') || '').trim();
      const answer = await call(`/payments/${encodeURIComponent(p.id)}/refunds`, {
        method: 'POST',
        body: { amount, reason: reason || null },
        idempotencyKey: this.key,
      });
      if (answer.ok) {
        this.key = newKey(); // the next refund is a new one
        await this.load();
        announce(this, `Refunded ${money(amount, p.currency)}.`);
      } else if (answer.status === 422 && answer.data && answer.data.status === 'failed') {
        this.key = newKey();
        await this.load();
        announce(this, `The gateway refused the refund${answer.data.failure ? `: ${answer.data.failure}` : ''}.`, 'bad');
      } else {
        showFailure(form, answer, 'Payments');
      }
    });
  }
}

customElements.define('admin-payments', AdminPayments);
customElements.define('admin-payment', AdminPayment);
