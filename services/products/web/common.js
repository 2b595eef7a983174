// What the catalog's pages share: links, product cards, availability wording, failure messages.
import { html, money, unavailable as down } from 'agora/kit';

export const productHref = (id) => `/p/${encodeURIComponent(id)}`;
export const categoryHref = (slug) => `/c/${encodeURIComponent(slug)}`;

/** Digits after the decimal point of a currency (2 for EUR, 0 for JPY): price filters are typed in
 * major units and sent in minor units. */
export function minorDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** The words and class of a product's availability (products' projection of inventory). */
export function availability(product) {
  const a = product.availability || {};
  if (a.status === 'in_stock') {
    const few = typeof a.available === 'number' && a.available <= 5;
    return {
      text: few ? `In stock: only ${a.available} left` : 'In stock',
      className: 'is-in-stock',
      canBuy: true,
    };
  }
  if (a.status === 'out_of_stock') {
    return { text: 'Out of stock', className: 'is-out-of-stock', canBuy: false };
  }
  // Inventory has said nothing yet: the cart and checkout check stock again.
  return { text: 'Availability not known yet', className: 'is-unknown', canBuy: true };
}

/** One product in a grid (its name an h3: the grids sit under a page's h2 or h1). */
export function productCard(product) {
  const stock = availability(product);
  return html`<li class="card catalog-card">
    <h3 class="catalog-card-name"><a href="${productHref(product.id)}">${product.name}</a></h3>
    <p class="price catalog-card-price">${money(product.price.amount, product.price.currency)}</p>
    <p class="catalog-availability ${stock.className}">${stock.text}</p>
  </li>`;
}

/** A failed call as the shopper should read it: the service's own words for a 4xx, else that the
 * catalog is unavailable right now (a network failure or a 5xx; never a blank page). */
export function failure(result, what = 'The catalog') {
  if (result.status === 0 || result.status >= 500) {
    return `${what} is unavailable right now. Please try again in a moment.`;
  }
  return result.problem?.detail || result.problem?.title || `${what} answered ${result.status}.`;
}

/** What a page shows in place of data it could not load, with a way to retry: the kit's
 * "unavailable right now" for a network failure or a 5xx, else the service's own words. */
export function unavailable(result, what = 'The catalog') {
  const message = result.status === 0 || result.status >= 500
    ? down(what)
    : html`<p class="notice" role="alert">${failure(result, what)}</p>`;
  return html`${message}<p><button type="button" class="btn" data-retry>Try again</button></p>`;
}
