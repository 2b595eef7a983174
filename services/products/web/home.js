// <catalog-home>: the storefront's front page: the categories and the newest products (the
// header's search box is the shell's).
import { api, html, render, title } from 'agora/kit';
import { categoryHref, productCard, unavailable } from './common.js';

const FEATURED = 12;

export class CatalogHome extends HTMLElement {
  connectedCallback() {
    this.addEventListener('click', (event) => {
      if (event.target.closest('[data-retry]')) this.load();
    });
    this.load();
  }

  async load() {
    title('');
    this.setAttribute('aria-busy', 'true');
    render(this, html`<h1>Welcome to Agora</h1><p class="muted">Loading the catalog…</p>`);
    const [categories, products] = await Promise.all([
      api('/api/categories'),
      api(`/api/products?limit=${FEATURED}&sort=newest`),
    ]);
    if (!this.isConnected) return;
    this.removeAttribute('aria-busy');
    if (!categories.ok && !products.ok) {
      render(this, html`<h1>Welcome to Agora</h1>${unavailable(products)}`);
      return;
    }
    render(
      this,
      html`<h1>Welcome to Agora</h1>
        <p class="catalog-lead">Browse by category, or search for anything in the box above.</p>
        <section class="catalog-section" aria-labelledby="catalog-home-categories">
          <h2 id="catalog-home-categories">Shop by category</h2>
          ${categories.ok ? categoryList(categories.data.items || []) : unavailable(categories, 'The category list')}
        </section>
        <section class="catalog-section" aria-labelledby="catalog-home-new">
          <h2 id="catalog-home-new">New in the catalog</h2>
          ${products.ok ? featured(products.data.items || []) : unavailable(products)}
          <p><a href="/search">Browse all products</a></p>
        </section>`,
    );
  }
}

function categoryList(tree) {
  if (tree.length === 0) return html`<p>The catalog has no categories yet.</p>`;
  return html`<ul class="catalog-categories">
    ${tree.map(
      (c) => html`<li class="card catalog-category-card">
        <a class="catalog-category-link" href="${categoryHref(c.slug)}">${c.name}</a>
        ${c.children?.length
          ? html`<ul class="catalog-subcategories">
              ${c.children.map((s) => html`<li><a href="${categoryHref(s.slug)}">${s.name}</a></li>`)}
            </ul>`
          : ''}
      </li>`,
    )}
  </ul>`;
}

function featured(items) {
  if (items.length === 0) return html`<p>No products yet.</p>`;
  return html`<ul class="catalog-grid">${items.map(productCard)}</ul>`;
}
