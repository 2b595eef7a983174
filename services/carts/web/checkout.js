// <cart-checkout>: the shipping address and payment method, then `POST /api/orders` from the cart.
// One Idempotency-Key per checkout attempt: a double click, or pressing again after a lost answer,
// places one order; a declined card keeps the cart; flagged lines send the shopper back to the
// cart to acknowledge them. Needs a signed-in shopper.
import {
  api, currentUser, html, money, navigate, render, showProblem, submitOnce, title,
} from 'agora/kit';
import {
  announce, browserCart, failure, lineName, problemKind, unavailable,
} from './common.js';

/** The payment gateway simulator's test cards (services/payment-gateway-sim/src/state.rs). */
const PAYMENT_METHODS = [
  ['pm_card_visa', 'Visa test card (pm_card_visa): the payment succeeds'],
  ['pm_card_mastercard', 'Mastercard test card (pm_card_mastercard): the payment succeeds'],
  ['pm_card_chargeDeclined', 'Declined test card (pm_card_chargeDeclined): the card is declined'],
  ['pm_card_chargeDeclinedInsufficientFunds',
    'Insufficient funds test card (pm_card_chargeDeclinedInsufficientFunds): the card is declined'],
];

/** ISO 3166-1 alpha-2 codes, as orders accepts them (services/orders/src/domain.rs). */
const COUNTRIES = [
  'AD', 'AE', 'AF', 'AG', 'AI', 'AL', 'AM', 'AO', 'AQ', 'AR', 'AS', 'AT', 'AU', 'AW', 'AX', 'AZ',
  'BA', 'BB', 'BD', 'BE', 'BF', 'BG', 'BH', 'BI', 'BJ', 'BL', 'BM', 'BN', 'BO', 'BQ', 'BR', 'BS',
  'BT', 'BV', 'BW', 'BY', 'BZ', 'CA', 'CC', 'CD', 'CF', 'CG', 'CH', 'CI', 'CK', 'CL', 'CM', 'CN',
  'CO', 'CR', 'CU', 'CV', 'CW', 'CX', 'CY', 'CZ', 'DE', 'DJ', 'DK', 'DM', 'DO', 'DZ', 'EC', 'EE',
  'EG', 'EH', 'ER', 'ES', 'ET', 'FI', 'FJ', 'FK', 'FM', 'FO', 'FR', 'GA', 'GB', 'GD', 'GE', 'GF',
  'GG', 'GH', 'GI', 'GL', 'GM', 'GN', 'GP', 'GQ', 'GR', 'GS', 'GT', 'GU', 'GW', 'GY', 'HK', 'HM',
  'HN', 'HR', 'HT', 'HU', 'ID', 'IE', 'IL', 'IM', 'IN', 'IO', 'IQ', 'IR', 'IS', 'IT', 'JE', 'JM',
  'JO', 'JP', 'KE', 'KG', 'KH', 'KI', 'KM', 'KN', 'KP', 'KR', 'KW', 'KY', 'KZ', 'LA', 'LB', 'LC',
  'LI', 'LK', 'LR', 'LS', 'LT', 'LU', 'LV', 'LY', 'MA', 'MC', 'MD', 'ME', 'MF', 'MG', 'MH', 'MK',
  'ML', 'MM', 'MN', 'MO', 'MP', 'MQ', 'MR', 'MS', 'MT', 'MU', 'MV', 'MW', 'MX', 'MY', 'MZ', 'NA',
  'NC', 'NE', 'NF', 'NG', 'NI', 'NL', 'NO', 'NP', 'NR', 'NU', 'NZ', 'OM', 'PA', 'PE', 'PF', 'PG',
  'PH', 'PK', 'PL', 'PM', 'PN', 'PR', 'PS', 'PT', 'PW', 'PY', 'QA', 'RE', 'RO', 'RS', 'RU', 'RW',
  'SA', 'SB', 'SC', 'SD', 'SE', 'SG', 'SH', 'SI', 'SJ', 'SK', 'SL', 'SM', 'SN', 'SO', 'SR', 'SS',
  'ST', 'SV', 'SX', 'SY', 'SZ', 'TC', 'TD', 'TF', 'TG', 'TH', 'TJ', 'TK', 'TL', 'TM', 'TN', 'TO',
  'TR', 'TT', 'TV', 'TW', 'TZ', 'UA', 'UG', 'UM', 'US', 'UY', 'UZ', 'VA', 'VC', 'VE', 'VG', 'VI',
  'VN', 'VU', 'WF', 'WS', 'YE', 'YT', 'ZA', 'ZM', 'ZW',
];

/** Field, label, autocomplete token, longest length orders accepts, the message when it is empty. */
const ADDRESS_FIELDS = [
  ['name', 'Full name', 'name', 100, 'Enter the name of the person the order goes to.'],
  ['line1', 'Address line 1', 'address-line1', 200, 'Enter the street and number.'],
  ['line2', 'Address line 2 (optional)', 'address-line2', 200, null],
  ['city', 'City', 'address-level2', 100, 'Enter the city.'],
  ['postal_code', 'Postal code', 'postal-code', 20, 'Enter the postal code.'],
];

/** What a shopper reads for the simulator's decline codes (orders' `failure`). */
const DECLINES = {
  generic_decline: 'the card was declined',
  card_declined: 'the card was declined',
  insufficient_funds: 'the card has insufficient funds',
  expired_card: 'the card has expired',
  processing_error: 'the card could not be processed',
};

export class CartCheckout extends HTMLElement {
  connectedCallback() {
    this.addEventListener('click', (event) => {
      if (event.target.closest('[data-retry]')) this.load();
    });
    this.load();
  }

  async load() {
    title('Checkout');
    this.setAttribute('aria-busy', 'true');
    render(this, html`<h1>Checkout</h1><p class="muted">Loading your cart…</p>`);
    const user = await currentUser();
    if (!this.isConnected) return;
    if (!user) {
      navigate('/login?next=/checkout', { replace: true });
      return;
    }
    const { cart, failed } = await browserCart();
    if (!this.isConnected) return;
    this.removeAttribute('aria-busy');
    if (failed) {
      render(this, html`<h1>Checkout</h1>${unavailable(failed)}`);
      return;
    }
    if (!cart || cart.status !== 'open' || cart.items.length === 0) {
      render(this, html`<h1>Checkout</h1>
        <p class="cart-empty">Your cart is empty: there is nothing to order.</p>
        <p><a href="/">Continue shopping</a></p>`);
      return;
    }
    if (cart.needs_review.length > 0) {
      render(this, html`<h1>Checkout</h1>
        <div class="notice cart-review" role="alert">
          <p>Some items in your cart changed since you added them (a new price, or they cannot be
            ordered any more). Review and accept the changes before you order.</p>
          <p><a class="btn btn-primary" href="/cart">Review your cart</a></p>
        </div>`);
      return;
    }
    this.show(cart);
  }

  show(cart) {
    this.cart = cart;
    this.attempt = null;
    render(
      this,
      html`<h1 tabindex="-1">Checkout</h1>
        <div class="cart-layout">
          <form class="cart-checkout-form" data-checkout novalidate>
            <fieldset>
              <legend>Shipping address</legend>
              ${ADDRESS_FIELDS.map(([field, label, autocomplete, max, empty]) => html`<div class="field">
                <label for="checkout-${field}">${label}</label>
                <input id="checkout-${field}" name="shipping_address.${field}" type="text" autocomplete="shipping ${autocomplete}" maxlength="${max}" ${empty ? 'required' : ''}>
              </div>`)}
              <div class="field">
                <label for="checkout-country">Country</label>
                <select id="checkout-country" name="shipping_address.country" autocomplete="shipping country" required>
                  ${countryOptions()}
                </select>
              </div>
            </fieldset>
            <fieldset class="cart-payment">
              <legend>Payment method</legend>
              <p class="muted">This shop runs against a payment simulator: choose a test card.</p>
              ${PAYMENT_METHODS.map(([value, label], i) => html`<div class="cart-radio">
                <input id="checkout-pm-${i}" type="radio" name="payment_method" value="${value}" ${i === 0 ? 'checked' : ''}>
                <label for="checkout-pm-${i}">${label}</label>
              </div>`)}
            </fieldset>
            <div role="alert" class="form-alert" data-testid="checkout-message"></div>
            <div><button type="submit" class="btn btn-primary">Place order</button></div>
          </form>
          <section class="panel cart-summary" aria-labelledby="checkout-summary-heading">
            <h2 id="checkout-summary-heading">Your order</h2>
            <ul class="cart-summary-lines">
              ${cart.items.map((l) => html`<li><span>${l.quantity} × ${lineName(l)}</span>
                <span>${l.line_total ? money(l.line_total.amount, l.line_total.currency) : ''}</span></li>`)}
            </ul>
            <dl class="cart-totals">
              <div><dt>Total</dt><dd data-testid="checkout-total">${money(cart.total.amount, cart.total.currency)}</dd></div>
            </dl>
            <p><a href="/cart">Change your cart</a></p>
          </section>
        </div>`,
    );
    const form = this.querySelector('[data-checkout]');
    submitOnce(form, () => this.place(form));
  }

  async place(form) {
    showProblem(form, null);
    const data = new FormData(form);
    const value = (name) => data.get(name)?.toString().trim() || '';
    const address = {};
    const errors = [];
    for (const [field, , , , empty] of ADDRESS_FIELDS) {
      const text = value(`shipping_address.${field}`);
      if (text) address[field] = text;
      else if (empty) errors.push({ field: `shipping_address.${field}`, message: empty });
    }
    address.country = value('shipping_address.country');
    const paymentMethod = value('payment_method');
    if (!paymentMethod) errors.push({ field: 'payment_method', message: 'Choose a payment method.' });
    if (errors.length) {
      showProblem(form, { status: 422, detail: 'Nothing was ordered: check the fields marked above.', errors });
      return;
    }
    const body = { cart_id: this.cart.id, payment_method: paymentMethod, shipping_address: address };
    // One key per attempt: the same order sent again (a lost answer, a second click) keeps its
    // key, so orders answers the one order it placed; a changed form is a new attempt.
    const text = JSON.stringify(body);
    if (!this.attempt || this.attempt.body !== text) this.attempt = { body: text, key: newKey() };
    const result = await api('/api/orders', { method: 'POST', body, idempotencyKey: this.attempt.key });
    if (!this.isConnected) return;
    this.outcome(form, result);
  }

  outcome(form, result) {
    const kind = problemKind(result);
    const settled = () => {
      this.attempt = null;
    };
    if (result.ok && result.data?.id) {
      settled();
      announce(null);
      navigate(`/orders/${encodeURIComponent(result.data.id)}`);
      return;
    }
    if (result.status === 401) {
      navigate('/login?next=/checkout', { replace: true });
      return;
    }
    if (result.status === 402) {
      settled();
      const code = result.problem?.detail || '';
      const why = DECLINES[code] || code;
      this.tell(form, `Your payment was declined${why ? ` (${why})` : ''}. Nothing was charged and your cart is kept: choose another payment method and try again.`);
      return;
    }
    if (result.status === 409 && kind === 'cart-needs-review') {
      settled();
      navigate('/cart');
      return;
    }
    if (result.status === 409 && kind === 'order-rejected') {
      settled();
      this.tell(form, html`${this.rejection(result.problem?.detail || '')} Nothing was ordered and your cart is kept.
        <a href="/cart">Back to your cart</a>`);
      return;
    }
    if (result.status === 409 && kind === 'cart-not-open') {
      settled();
      announce(null);
      this.tell(form, html`This cart has already been ordered. <a href="/orders">See your orders</a>`);
      return;
    }
    if (result.status === 409) {
      // The same attempt is still being placed: pressing again (same key) answers that order.
      this.tell(form, 'Your order is still being placed. Wait a moment, then press “Place order” again to see it.');
      return;
    }
    if (result.status === 400 || result.status === 422) {
      settled();
      showProblem(form, result.problem);
      return;
    }
    // No answer or a failure upstream: the key is kept, so pressing again cannot order twice.
    this.tell(form, `${failure(result, 'Ordering')} Press “Place order” again to retry; you will not be charged twice.`);
  }

  /** Why orders rejected the order, its SKUs (`out of stock: AUD-001, …`) named as the cart names them. */
  rejection(detail) {
    const found = /out of stock:\s*(.+)$/i.exec(detail);
    if (!found) return detail ? `The order was refused: ${detail}.` : 'The order was refused.';
    const names = found[1].split(',').map((sku) => sku.trim()).filter(Boolean)
      .map((sku) => lineName(this.cart.items.find((l) => l.sku === sku) || { name: sku }));
    return `Not enough stock left of ${names.join(', ')} for this order: lower the quantity or remove it.`;
  }

  /** A message in the form's alert region (read out at once). */
  tell(form, message) {
    showProblem(form, null);
    render(form.querySelector('[role=alert]'), html`<p>${message}</p>`);
  }
}

/** A random UUID (v4) as the Idempotency-Key; `getRandomValues` works outside secure contexts too. */
function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The countries by name in the page's language; the browser's region first chosen. */
function countryOptions() {
  let names;
  try {
    names = new Intl.DisplayNames(undefined, { type: 'region' });
  } catch {
    names = null;
  }
  let mine = 'DE';
  try {
    mine = new Intl.Locale(navigator.language).maximize().region || 'DE';
  } catch {
    // Keep the default.
  }
  const chosen = COUNTRIES.includes(mine) ? mine : 'DE';
  return COUNTRIES
    .map((code) => [code, names?.of(code) || code])
    .sort((a, b) => a[1].localeCompare(b[1]))
    .map(([code, name]) => (code === chosen
      ? html`<option value="${code}" selected>${name}</option>`
      : html`<option value="${code}">${name}</option>`));
}
