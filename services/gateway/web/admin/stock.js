// Stock: levels of the catalog's products, one SKU's level, adjustments and its ledger.
import { navigate } from 'agora/kit';
import {
  Page, call, html, render, showFailure, clearProblem, announce, frame, unavailable, isDown,
  problemText, query, when, takeFlash, setFlash, field, searchForm,
} from './lib.js';

const REASONS = ['received', 'damaged', 'correction', 'returned', 'lost'];

function levelCells(s) {
  return s
    ? html`<td class="num">${s.on_hand}</td><td class="num">${s.reserved}</td><td class="num">${s.available}</td><td class="num">${s.low_stock_threshold ?? '—'}</td>`
    : html`<td colspan="4">No stock kept yet</td>`;
}

class AdminStock extends Page {
  async load() {
    render(this, frame('Stock', html`
      <form class="admin-filters" data-form="sku" aria-label="Open a SKU">
        ${field('stock-sku', 'SKU', { name: 'sku', attributes: html`required` })}
        <button type="submit" class="btn-primary">Open SKU</button>
      </form>
      ${searchForm('stock-q', 'Product search', 'Find stock levels', this.q)}
      <div class="admin-results"></div>`));
    const results = this.querySelector('.admin-results');
    const products = await call(`/products${query({ q: this.q, limit: 25 })}`);
    if (!products.ok) {
      render(results, isDown(products) ? unavailable('The catalog') : html`<p role="alert">${problemText(products, 'The search failed')}</p>`);
      return;
    }
    const items = products.data.items;
    if (items.length === 0) {
      render(results, html`<p>No products match.</p>`);
      return;
    }
    const stock = await call(`/stock${query({ sku: items.map((p) => p.sku).join(',') })}`);
    const levels = new Map(stock.ok ? stock.data.items.map((s) => [s.sku, s]) : []);
    render(results, html`
      ${stock.ok ? '' : unavailable('Inventory')}
      <div class="table-wrap" tabindex="0" role="region" aria-label="Stock levels">
        <table>
          <caption>Stock levels${this.q ? ` of products matching “${this.q}”` : ''}</caption>
          <thead><tr><th scope="col">Product</th><th scope="col">SKU</th><th scope="col" class="num">On hand</th><th scope="col" class="num">Reserved</th><th scope="col" class="num">Available</th><th scope="col" class="num">Low-stock threshold</th></tr></thead>
          <tbody>
            ${items.map((p) => html`<tr>
              <th scope="row"><a href="/admin/stock/${encodeURIComponent(p.sku)}" aria-label="Stock of ${p.name} (${p.sku})">${p.name}</a></th>
              <td>${p.sku}</td>
              ${stock.ok ? levelCells(levels.get(p.sku)) : html`<td colspan="4">Unknown</td>`}
            </tr>`)}
          </tbody>
        </table>
      </div>`);
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    if (form.dataset.form === 'sku') {
      const sku = String(data.get('sku') || '').trim();
      if (sku) navigate(`/admin/stock/${encodeURIComponent(sku)}`);
    } else {
      this.q = String(data.get('q') || '').trim();
      this.load();
    }
  }
}

class AdminStockItem extends Page {
  async load() {
    const sku = this.getAttribute('sku');
    this.sku = sku;
    this.movements = [];
    const enc = encodeURIComponent(sku);
    const [level, ledger] = await Promise.all([call(`/stock/${enc}`), call(`/stock/${enc}/movements?limit=25`)]);
    if (isDown(level)) {
      render(this, frame(`Stock of ${sku}`, unavailable('Inventory')));
      return;
    }
    const s = level.ok ? level.data : null;
    render(this, frame(`Stock of ${sku}`, html`
      ${s ? html`
        <dl class="admin-facts">
          <div><dt>On hand</dt><dd>${s.on_hand}</dd></div>
          <div><dt>Reserved</dt><dd>${s.reserved}</dd></div>
          <div><dt>Available</dt><dd>${s.available}</dd></div>
          <div><dt>Low-stock threshold</dt><dd>${s.low_stock_threshold ?? 'none'}</dd></div>
          <div><dt>Updated</dt><dd>${when(s.updated_at)}</dd></div>
          ${s.discontinued ? html`<div><dt>Discontinued</dt><dd>yes</dd></div>` : ''}
        </dl>` : html`<p>No stock is kept for ${sku} yet. Set a count below to start.</p>`}
      ${s ? html`
      <h2>Receive or adjust</h2>
      <form class="form admin-form" data-form="adjust" novalidate aria-label="Receive or adjust">
        <p role="alert" class="form-alert"></p>
        <div class="field-row">
          <div class="field">
            <label for="adjust-delta">Units (+ added, − removed)</label>
            <input id="adjust-delta" name="delta" type="number" step="1" required>
          </div>
          <div class="field">
            <label for="adjust-reason">Reason</label>
            <select id="adjust-reason" name="reason">${REASONS.map((r) => html`<option value="${r}">${r}</option>`)}</select>
          </div>
        </div>
        <button type="submit" class="btn-primary">Adjust stock</button>
      </form>` : ''}
      <h2>Set the count</h2>
      <form class="form admin-form" data-form="set" novalidate aria-label="Set the count">
        <p role="alert" class="form-alert"></p>
        <div class="field-row">
          <div class="field">
            <label for="set-on-hand">On hand</label>
            <input id="set-on-hand" name="on_hand" type="number" min="0" step="1" required value="${s ? s.on_hand : ''}">
          </div>
          <div class="field">
            <label for="set-threshold">Low-stock threshold</label>
            <input id="set-threshold" name="low_stock_threshold" type="number" min="0" step="1" value="${s && s.low_stock_threshold != null ? s.low_stock_threshold : ''}" aria-describedby="set-threshold-hint">
            <p id="set-threshold-hint" class="hint">Empty leaves it as it is.</p>
          </div>
        </div>
        <div class="field">
          <label for="set-reason">Note</label>
          <input id="set-reason" name="reason" required value="${s ? 'stock count' : 'first delivery'}" aria-describedby="set-reason-hint">
          <p id="set-reason-hint" class="hint">Why, e.g. “stock count”; the ledger keeps it.</p>
        </div>
        <button type="submit" class="btn-primary">Set count</button>
      </form>
      <h2>Ledger</h2>
      <div class="admin-ledger"></div>
      <p><a href="/admin/stock">All stock</a></p>`));
    const flash = takeFlash();
    if (flash) announce(this, flash);
    this.showLedger(ledger);
  }

  showLedger(answer) {
    const slot = this.querySelector('.admin-ledger');
    if (!answer.ok) {
      render(slot, answer.status === 404 ? html`<p>No movements yet.</p>` : isDown(answer) ? unavailable('The ledger') : html`<p role="alert">${problemText(answer, 'The ledger could not be read')}</p>`);
      return;
    }
    this.movements = this.movements.concat(answer.data.items);
    this.next = answer.data.next_cursor;
    render(slot, this.movements.length === 0 ? html`<p>No movements yet.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Ledger">
        <table>
          <caption>Movements of ${this.sku}, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Kind</th><th scope="col" class="num">Change</th><th scope="col" class="num">On hand after</th><th scope="col">Reason</th><th scope="col">Reservation</th></tr></thead>
          <tbody>
            ${this.movements.map((m) => html`<tr>
              <td>${when(m.created_at)}</td>
              <td>${m.kind}</td>
              <td class="num">${m.delta > 0 ? `+${m.delta}` : m.delta}</td>
              <td class="num">${m.on_hand_after}</td>
              <td>${m.reason}</td>
              <td>${m.reservation_id || ''}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      ${this.next ? html`<p><button type="button" data-action="more">More movements</button></p>` : ''}`);
  }

  async onAction(action) {
    if (action === 'more') {
      this.showLedger(await call(`/stock/${encodeURIComponent(this.sku)}/movements${query({ limit: 25, cursor: this.next })}`));
    }
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    this.busy(form, async () => {
      clearProblem(form);
      const enc = encodeURIComponent(this.sku);
      let answer;
      let done;
      if (form.dataset.form === 'adjust') {
        const delta = Number(data.get('delta'));
        if (!Number.isInteger(delta) || delta === 0 || String(data.get('delta')).trim() === '') {
          showFailure(form, { status: 422, problem: { detail: 'Please correct the field marked below.', errors: [{ field: 'delta', message: 'Enter a whole number of units, not zero (negative removes units)' }] } }, 'Inventory');
          return;
        }
        answer = await call(`/stock/${enc}/adjustments`, { method: 'POST', body: { delta, reason: data.get('reason') } });
        done = `Stock of ${this.sku} ${delta > 0 ? 'increased' : 'decreased'} by ${Math.abs(delta)} (${data.get('reason')}).`;
      } else {
        const text = String(data.get('on_hand')).trim();
        const body = { on_hand: text === '' ? -1 : Number(text), reason: data.get('reason') };
        const threshold = String(data.get('low_stock_threshold') || '').trim();
        if (threshold !== '') body.low_stock_threshold = Number(threshold);
        answer = await call(`/stock/${enc}`, { method: 'PUT', body });
        done = `Stock of ${this.sku} set to ${body.on_hand}.`;
      }
      if (answer.ok) {
        setFlash(`${done} Available now: ${answer.data.available}.`);
        this.load();
      } else {
        showFailure(form, answer, 'Inventory');
      }
    });
  }
}

customElements.define('admin-stock', AdminStock);
customElements.define('admin-stock-item', AdminStockItem);
