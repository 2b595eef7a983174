// The admin micro frontend (docs/frontend.md): `<admin-app path="/admin/...">`, its own
// sub-navigation, and one page element per admin path. Defines elements only, at import time.
import { currentUser } from 'agora/kit';
import { html, render } from './lib.js';
import './products.js';
import './stock.js';
import './orders.js';
import './payments.js';
import './users.js';
import './dead-letters.js';
import './status.js';

const SECTIONS = [
  ['products', 'Products'],
  ['categories', 'Categories'],
  ['stock', 'Stock'],
  ['orders', 'Orders'],
  ['payments', 'Payments'],
  ['users', 'Users'],
  ['dead-letters', 'Dead letters'],
  ['status', 'Status'],
];

/** `/admin/<section>/<rest>` → the page element and its attributes. */
function route(path) {
  const parts = path.replace(/^\/admin\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [section = 'products', id] = parts;
  const pages = {
    products: id === 'new' ? ['admin-product-form', {}] : id ? ['admin-product-form', { 'product-id': id }] : ['admin-products', {}],
    categories: id ? ['admin-category-form', { slug: id }] : ['admin-categories', {}],
    stock: id ? ['admin-stock-item', { sku: id }] : ['admin-stock', {}],
    orders: id ? ['admin-order', { 'order-id': id }] : ['admin-orders', {}],
    payments: id ? ['admin-payment', { 'payment-id': id }] : ['admin-payments', {}],
    users: id ? ['admin-user', { 'user-id': id }] : ['admin-users', {}],
    'dead-letters': ['admin-dead-letters', {}],
    status: ['admin-status', {}],
  };
  return { section, page: pages[section] || null };
}

class AdminApp extends HTMLElement {
  static get observedAttributes() {
    return ['path'];
  }

  connectedCallback() {
    this.onSession = () => this.show();
    window.addEventListener('agora:session', this.onSession);
    this.show();
  }

  disconnectedCallback() {
    window.removeEventListener('agora:session', this.onSession);
  }

  attributeChangedCallback(name, before, after) {
    if (this.isConnected && before !== after) this.show();
  }

  async show() {
    const path = this.getAttribute('path') || location.pathname;
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    let user;
    try {
      user = await currentUser();
    } catch {
      user = null;
    }
    if (ticket !== this.ticket) return; // a newer navigation won
    const next = encodeURIComponent(path);
    if (!user) {
      render(this, html`<section class="admin-gate">
        <h1>Admin</h1>
        <p>The admin is for admins only. Log in with an admin account to use it.</p>
        <p><a href="/login?next=${next}">Log in</a></p>
      </section>`);
      return;
    }
    if (!(user.roles || []).includes('admin')) {
      render(this, html`<section class="admin-gate">
        <h1>Admin</h1>
        <p>Admin only: you are signed in as ${user.username}, who is not an admin.</p>
        <p><a href="/login?next=${next}">Log in as an admin</a></p>
      </section>`);
      return;
    }
    const { section, page } = route(path);
    // The navigation is drawn once and kept, so the keyboard focus stays on the link followed.
    if (!this.querySelector(':scope > .admin')) {
      render(this, html`<div class="admin">
        <nav class="admin-nav" aria-label="Admin">
          <ul>
            ${SECTIONS.map(([key, label]) => html`<li><a href="/admin/${key}" data-section="${key}">${label}</a></li>`)}
          </ul>
        </nav>
        <div class="admin-page"></div>
      </div>`);
    }
    for (const link of this.querySelectorAll('.admin-nav a')) {
      if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    const slot = this.querySelector('.admin-page');
    slot.replaceChildren();
    if (!page) {
      render(slot, html`<h1>Not found</h1><p>There is no admin page at this address. Choose a section above.</p>`);
      return;
    }
    const [tag, attributes] = page;
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    slot.append(element);
  }
}

customElements.define('admin-app', AdminApp);
