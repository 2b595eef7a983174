// <catalog-search> and <catalog-category>: a page of products with the filters the products API
// has (words, price range, in stock, sort) and its cursor pagination. The URL holds the whole
// state (`?q=&min_price=&max_price=&in_stock=&sort=&cursor=&page=`), so reload and back work: the
// shell creates the element anew for each URL.
import { api, html, navigate, render, showProblem, title } from 'agora/kit';
import { categoryHref, failure, minorDigits, productCard, unavailable } from './common.js';

const PAGE_SIZE = 20;
/** The URL parameters that are passed to `GET /api/products` as they are. */
const API_PARAMS = ['q', 'min_price', 'max_price', 'in_stock', 'sort', 'cursor'];
const SORTS = [
  ['relevance', 'Best match'],
  ['newest', 'Newest first'],
  ['price', 'Price: low to high'],
  ['-price', 'Price: high to low'],
  ['name', 'Name: A to Z'],
];

class Listing extends HTMLElement {
  connectedCallback() {
    this.loads = 0;
    this.addEventListener('submit', (event) => this.onFilter(event));
    this.addEventListener('click', (event) => {
      if (event.target.closest('[data-retry]')) this.load();
    });
    this.load();
  }

  /** The page's own state, from the URL. */
  state() {
    const url = new URLSearchParams(window.location.search);
    const state = {};
    for (const name of [...API_PARAMS, 'page']) {
      const value = url.get(name);
      if (value !== null && value !== '') state[name] = value;
    }
    return state;
  }

  async load() {
    const mine = ++this.loads;
    const state = this.state();
    const context = await this.context();
    if (mine !== this.loads || !this.isConnected) return;
    if (context.failed) {
      render(this, context.failed);
      return;
    }
    title(context.title);
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const name of API_PARAMS) if (state[name] !== undefined) query.set(name, state[name]);
    if (context.category) query.set('category', context.category);
    this.setAttribute('aria-busy', 'true');
    const result = await api(`/api/products?${query}`);
    if (mine !== this.loads || !this.isConnected) return;
    this.removeAttribute('aria-busy');
    const items = result.ok ? result.data.items || [] : [];
    const currency = items[0]?.price?.currency || 'EUR';
    this.currency = currency;
    let body;
    if (result.ok) {
      body = this.results(state, items, result.data.next_cursor);
    } else if (result.status === 400) {
      // A cursor or filter the API refuses (an edited URL): say so and offer a clean start.
      body = html`<div class="notice" role="alert">
        <p>${failure(result)}</p>
        <p><a href="${window.location.pathname}">Start again without filters</a></p>
      </div>`;
    } else {
      body = unavailable(result);
    }
    render(
      this,
      html`${context.header}
        <div class="catalog-listing">
          ${this.filters(state, currency)}
          <section class="catalog-results" aria-labelledby="${this.localName}-results">
            <h2 id="${this.localName}-results">${context.resultsHeading}</h2>
            ${body}
          </section>
        </div>`,
    );
  }

  /** The filter form: every control labelled, the current state filled in. */
  filters(state, currency) {
    const id = this.localName;
    const digits = minorDigits(currency);
    const major = (minor) => (minor === undefined ? '' : String(Number(minor) / 10 ** digits));
    const step = digits === 0 ? '1' : String(1 / 10 ** digits);
    const defaultSort = state.q ? 'relevance' : 'newest';
    const sort = state.sort || defaultSort;
    const sorts = SORTS.filter(([value]) => value !== 'relevance' || state.q);
    const symbol = currencySymbol(currency);
    return html`<form class="catalog-filters" data-catalog-filters novalidate>
      <h2 class="catalog-filters-heading">Filter and sort</h2>
      ${this.searchField(state)}
      <fieldset class="catalog-price-range">
        <legend>Price (${symbol})</legend>
        <div class="field">
          <label for="${id}-min">Minimum price</label>
          <input id="${id}-min" name="min_price" type="number" inputmode="decimal" min="0" step="${step}" value="${major(state.min_price)}">
        </div>
        <div class="field">
          <label for="${id}-max">Maximum price</label>
          <input id="${id}-max" name="max_price" type="number" inputmode="decimal" min="0" step="${step}" value="${major(state.max_price)}">
        </div>
      </fieldset>
      <div class="catalog-check">
        <input id="${id}-stock" name="in_stock" type="checkbox" value="true" ${state.in_stock === 'true' ? 'checked' : ''}>
        <label for="${id}-stock">In stock only</label>
      </div>
      <div class="field">
        <label for="${id}-sort">Sort by</label>
        <select id="${id}-sort" name="sort">
          ${sorts.map(([value, label]) => option(value, label, value === sort))}
        </select>
      </div>
      <p role="alert" class="form-alert"></p>
      <div class="row">
        <button type="submit" class="btn btn-primary">Apply filters</button>
        <a href="${this.clearHref(state)}">Clear filters</a>
      </div>
    </form>`;
  }

  /** The words field; only the search page has it. */
  searchField() {
    return '';
  }

  /** Where "Clear filters" goes. */
  clearHref() {
    return window.location.pathname;
  }

  results(state, items, nextCursor) {
    const page = Math.max(1, Number.parseInt(state.page || '1', 10) || 1);
    if (items.length === 0) {
      return html`<p role="status">${page > 1 ? 'No more products.' : 'No products match these filters.'}</p>`;
    }
    const first = (page - 1) * PAGE_SIZE + 1;
    const last = first + items.length - 1;
    const here = new URLSearchParams(window.location.search);
    const at = (cursor, number) => {
      const next = new URLSearchParams(here);
      next.delete('cursor');
      next.delete('page');
      if (cursor) {
        next.set('cursor', cursor);
        next.set('page', String(number));
      }
      const text = next.toString();
      return text ? `${window.location.pathname}?${text}` : window.location.pathname;
    };
    return html`<p role="status" class="catalog-count">Showing products ${first} to ${last}</p>
      <ul class="catalog-grid">${items.map(productCard)}</ul>
      <nav class="pagination catalog-pages" aria-label="Pages of results">
        ${page > 1 ? html`<a href="${at(null, 1)}">First page</a>` : ''}
        <span>Page ${page}</span>
        ${nextCursor ? html`<a href="${at(nextCursor, page + 1)}" rel="next">Next page</a>` : ''}
      </nav>`;
  }

  /** Applies the filter form: a new URL (first page), which the page then loads. */
  onFilter(event) {
    const form = event.target.closest('[data-catalog-filters]');
    if (!form) return;
    event.preventDefault();
    const data = new FormData(form);
    const digits = minorDigits(this.currency || 'EUR');
    const next = new URLSearchParams();
    const q = data.get('q')?.toString().trim();
    if (q) next.set('q', q);
    const errors = [];
    const prices = {};
    for (const name of ['min_price', 'max_price']) {
      const text = data.get(name)?.toString().trim();
      if (!text) continue;
      const value = Number(text);
      if (!Number.isFinite(value) || value < 0) {
        errors.push({ field: name, message: 'Enter a price of 0 or more.' });
        continue;
      }
      prices[name] = Math.round(value * 10 ** digits);
      next.set(name, String(prices[name]));
    }
    if (prices.min_price !== undefined && prices.max_price !== undefined
      && prices.min_price > prices.max_price) {
      errors.push({ field: 'max_price', message: 'The maximum price is below the minimum.' });
    }
    if (errors.length) {
      showProblem(form, { status: 400, title: 'Check the filters', detail: 'Check the price filters.', errors });
      return;
    }
    if (data.get('in_stock')) next.set('in_stock', 'true');
    const sort = data.get('sort')?.toString();
    const defaultSort = q ? 'relevance' : 'newest';
    if (sort && sort !== defaultSort && (sort !== 'relevance' || q)) next.set('sort', sort);
    const text = next.toString();
    // The shell shows the new URL with a new element of this page.
    navigate(text ? `${window.location.pathname}?${text}` : window.location.pathname);
  }
}

export class CatalogSearch extends Listing {
  async context() {
    const q = this.state().q;
    return {
      title: q ? `Search: ${q}` : 'All products',
      header: html`<h1>${q ? `Search results for “${q}”` : 'All products'}</h1>`,
      resultsHeading: 'Products',
    };
  }

  searchField(state) {
    return html`<div class="field">
      <label for="catalog-search-q">Search for</label>
      <input id="catalog-search-q" name="q" type="search" value="${state.q || ''}" maxlength="200" autocomplete="off">
    </div>`;
  }

  /** Clearing the filters keeps the words. */
  clearHref(state) {
    return state.q ? `/search?q=${encodeURIComponent(state.q)}` : '/search';
  }
}

export class CatalogCategory extends Listing {
  static get observedAttributes() {
    return ['category'];
  }

  attributeChangedCallback(name, old, value) {
    if (old !== null && old !== value && this.isConnected) this.load();
  }

  /** The category's heading and subcategories; a category that does not exist says so. */
  async context() {
    const slug = this.getAttribute('category') || '';
    const result = await api(`/api/categories/${encodeURIComponent(slug)}`);
    if (result.status === 404) {
      return {
        failed: html`<h1>Category not found</h1>
          <p>There is no category “${slug}”. <a href="/">Back to the shop</a></p>`,
      };
    }
    if (!result.ok) {
      return { failed: html`<h1>Category</h1>${unavailable(result)}` };
    }
    const category = result.data;
    // The breadcrumb names the parent; without it (unreachable) the link says where it goes.
    const parent = category.parent
      ? await api(`/api/categories/${encodeURIComponent(category.parent)}`)
      : null;
    const parentName = parent?.ok ? parent.data.name : 'Parent category';
    return {
      title: category.name,
      category: category.slug,
      header: html`<nav aria-label="Breadcrumb" class="catalog-breadcrumb">
          <ol>
            <li><a href="/">Home</a></li>
            ${category.parent ? html`<li><a href="${categoryHref(category.parent)}">${parentName}</a></li>` : ''}
            <li aria-current="page">${category.name}</li>
          </ol>
        </nav>
        <h1>${category.name}</h1>
        ${category.description ? html`<p class="catalog-lead">${category.description}</p>` : ''}
        ${category.children?.length
          ? html`<nav aria-label="Subcategories" class="catalog-subnav"><ul>
              ${category.children.map((c) => html`<li><a href="${categoryHref(c.slug)}">${c.name}</a></li>`)}
            </ul></nav>`
          : ''}`,
      resultsHeading: `Products in ${category.name}`,
    };
  }
}

function option(value, label, selected) {
  return selected
    ? html`<option value="${value}" selected>${label}</option>`
    : html`<option value="${value}">${label}</option>`;
}

function currencySymbol(currency) {
  try {
    const parts = new Intl.NumberFormat(undefined, { style: 'currency', currency }).formatToParts(0);
    return parts.find((p) => p.type === 'currency')?.value || currency;
  } catch {
    return currency;
  }
}
