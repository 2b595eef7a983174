// <catalog-product product-id="…">: one product: name, price, availability, description, details,
// and "Add to cart" with a quantity.
import { api, html, money, render, showProblem, submitOnce, title } from 'agora/kit';
import { addToCart } from './cart.js';
import { availability, categoryHref, failure, unavailable } from './common.js';

export class CatalogProduct extends HTMLElement {
  static get observedAttributes() {
    return ['product-id'];
  }

  connectedCallback() {
    this.addEventListener('click', (event) => {
      if (event.target.closest('[data-retry]')) this.load();
    });
    this.load();
  }

  attributeChangedCallback(name, old, value) {
    if (old !== null && old !== value && this.isConnected) this.load();
  }

  async load() {
    const id = this.getAttribute('product-id') || '';
    this.setAttribute('aria-busy', 'true');
    render(this, html`<p class="muted">Loading the product…</p>`);
    const result = await api(`/api/products/${encodeURIComponent(id)}`);
    if (!this.isConnected || id !== this.getAttribute('product-id')) return;
    this.removeAttribute('aria-busy');
    if (result.status === 404 || result.status === 400) {
      render(this, html`<h1>Product not found</h1>
        <p>This product is not in the catalog (any more). <a href="/">Back to the shop</a></p>`);
      return;
    }
    if (!result.ok) {
      render(this, html`<h1>Product</h1>${unavailable(result)}`);
      return;
    }
    const product = result.data;
    // The category's name for the breadcrumb; its slug does when the category cannot be read.
    const category = await api(`/api/categories/${encodeURIComponent(product.category)}`);
    if (!this.isConnected) return;
    const categoryName = category.ok ? category.data.name : product.category;
    title(product.name);
    this.show(product, categoryName);
  }

  show(product, categoryName) {
    const stock = availability(product);
    const attributes = Object.entries(product.attributes || {});
    render(
      this,
      html`<nav aria-label="Breadcrumb" class="catalog-breadcrumb">
          <ol>
            <li><a href="/">Home</a></li>
            <li><a href="${categoryHref(product.category)}">${categoryName}</a></li>
            <li aria-current="page">${product.name}</li>
          </ol>
        </nav>
        <article class="catalog-product">
          <h1>${product.name}</h1>
          <p class="price catalog-price">${money(product.price.amount, product.price.currency)}</p>
          <p class="catalog-availability ${stock.className}" data-testid="availability">${stock.text}</p>
          <form class="catalog-add" data-add novalidate>
            <div class="field">
              <label for="catalog-quantity">Quantity</label>
              <input id="catalog-quantity" name="quantity" type="number" inputmode="numeric" min="1" max="99" step="1" value="1" required>
            </div>
            ${stock.canBuy
              ? html`<button type="submit" class="btn btn-primary">Add to cart</button>`
              : html`<button type="submit" class="btn btn-primary" disabled aria-describedby="catalog-sold-out">Add to cart</button>
                  <p id="catalog-sold-out" class="muted catalog-hint">Out of stock: it cannot be added now.</p>`}
            <p role="alert" class="form-alert"></p>
            <p role="status" class="success catalog-added" data-added></p>
          </form>
          ${product.description ? html`<h2>Description</h2><p class="catalog-description">${product.description}</p>` : ''}
          ${attributes.length
            ? html`<h2>Details</h2><dl class="catalog-attributes">
                ${attributes.map(([name, value]) => html`<div><dt>${name}</dt><dd>${value}</dd></div>`)}
              </dl>`
            : ''}
          <p class="catalog-sku">SKU ${product.sku}</p>
        </article>`,
    );
    const form = this.querySelector('[data-add]');
    submitOnce(form, () => this.add(form, product));
  }

  async add(form, product) {
    const status = form.querySelector('[data-added]');
    status.textContent = '';
    const text = new FormData(form).get('quantity')?.toString().trim() || '';
    const quantity = Number(text);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
      showProblem(form, {
        status: 422,
        title: 'Check the quantity',
        detail: 'Choose a quantity from 1 to 99.',
        errors: [{ field: 'quantity', message: 'Choose a whole number from 1 to 99.' }],
      });
      return;
    }
    const outcome = await addToCart(product.id, quantity);
    if (outcome.ok) {
      showProblem(form, null);
      const line = outcome.cart.items?.find((l) => l.product_id === product.id);
      const inCart = line ? line.quantity : quantity;
      render(status, html`Added to your cart (${inCart} in cart). <a href="/cart">View cart</a>`);
      return;
    }
    const { result } = outcome;
    if (result.status === 422 && result.problem?.errors?.length) {
      showProblem(form, result.problem);
      return;
    }
    showProblem(form, { status: result.status, detail: failure(result, 'The cart') });
  }
}
