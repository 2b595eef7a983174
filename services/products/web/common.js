// What the catalog's pages share: links, product cards, availability wording, failure messages.
import { html, money, failed, failure as kitFailure } from 'agora/kit';

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

/** A failed call as the shopper reads it (the kit's `failure`, about the catalog by default). */
export const failure = (result, what = 'The catalog') => kitFailure(result, what);

/** What a page shows in place of data it could not load, with "Try again" (the kit's `failed`). */
export const unavailable = (result, what = 'The catalog') => failed(result, what);
