// The catalog micro frontend (docs/frontend.md): the storefront's home, category, search and
// product pages. Defines its elements and nothing else at import time.
import { CatalogHome } from './home.js';
import { CatalogCategory, CatalogSearch } from './listing.js';
import { CatalogProduct } from './product.js';

const elements = {
  'catalog-home': CatalogHome,
  'catalog-category': CatalogCategory,
  'catalog-search': CatalogSearch,
  'catalog-product': CatalogProduct,
};

for (const [name, element] of Object.entries(elements)) {
  // A second import (another copy of the module under another URL) must not throw.
  if (!customElements.get(name)) customElements.define(name, element);
}
