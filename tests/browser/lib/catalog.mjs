// Products to shop for, found through the public API.
import { call } from './platform.mjs';

/** An in-stock product with at least `min` units available, skipping the first `skip` such. */
export async function inStockProduct(request, { min = 5, skip = 0 } = {}) {
  const r = await call(request, null, 'GET', '/products?in_stock=true&sort=name&limit=50');
  if (r.status !== 200) throw new Error(`GET /products: ${r.status}`);
  const found = r.body.items.filter((p) => (p.availability?.available ?? 0) >= min);
  if (found.length <= skip) throw new Error('no product in stock');
  return found[skip];
}

/** A word of the product's name that search finds it by. */
export const searchWord = (product) => product.name.split(/\s+/).sort((a, b) => b.length - a.length)[0];
