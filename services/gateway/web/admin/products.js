// Products and categories: list/search, create, edit, delete.
import { navigate } from 'agora/kit';
import {
  Page, call, html, render, money, showProblem, showFailure, clearProblem, announce, frame,
  unavailable, isDown, problemText, confirmAction, setFlash, takeFlash, toMajor, toMinor, query, when, downText,
  field, searchForm,
} from './lib.js';

/** Every category of the tree, depth first, with its depth. */
function flatten(items, depth = 0, out = []) {
  for (const category of items || []) {
    out.push({ ...category, depth });
    flatten(category.children, depth + 1, out);
  }
  return out;
}

async function categories() {
  const answer = await call('/categories');
  return answer.ok ? flatten(answer.data.items) : null;
}

function categoryOptions(list, selected, { none } = {}) {
  return html`${none ? html`<option value="">${none}</option>` : ''}
    ${list.map((c) => html`<option value="${c.slug}" ${c.slug === selected ? html`selected` : ''}>${'— '.repeat(c.depth)}${c.name}</option>`)}`;
}

/**
 * The category form's fields, empty for a new category, else `c`'s (its slug read-only);
 * `parents` are the categories it may go under.
 */
function categoryFields(parents, c) {
  const slug = c
    ? field('category-slug', 'Slug', { name: 'slug', value: c.slug, attributes: html`readonly` })
    : field('category-slug', 'Slug', {
      name: 'slug', attributes: html`required`, hint: 'Lower-case letters, digits and hyphens; used in addresses.',
    });
  const name = field('category-name', 'Name', { name: 'name', value: c ? c.name : '', attributes: html`required` });
  return html`${c ? html`${slug}${name}` : html`${name}${slug}`}
    ${field('category-description', 'Description', {
      name: 'description', textarea: true, value: c ? c.description : '', attributes: c ? html`rows="3"` : html`rows="2"`,
    })}
    ${field('category-parent', 'Parent', {
      name: 'parent', options: categoryOptions(parents, c ? c.parent || '' : '', { none: 'None (top level)' }),
    })}`;
}

class AdminProducts extends Page {
  async load(cursor) {
    if (!cursor) {
      this.items = [];
      render(this, frame('Products', html`
        <p><a href="/admin/products/new" class="btn btn-primary">New product</a></p>
        ${searchForm('products-q', 'Product search', 'Find products', this.q)}
        <div class="admin-results"></div>`));
      const flash = takeFlash();
      if (flash) announce(this, flash);
    }
    const results = this.querySelector('.admin-results');
    const answer = await call(`/products${query({ q: this.q, limit: 25, cursor })}`);
    if (!answer.ok) {
      render(results, isDown(answer) ? unavailable('The catalog') : html`<p role="alert">${problemText(answer, 'The search failed')}</p>`);
      return;
    }
    this.items = this.items.concat(answer.data.items);
    this.next = answer.data.next_cursor;
    render(results, this.items.length === 0 ? html`<p>No products match.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Products">
        <table>
          <caption>Products${this.q ? ` matching “${this.q}”` : ''} (${this.items.length}${this.next ? '+' : ''})</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">SKU</th><th scope="col">Category</th><th scope="col" class="num">Price</th><th scope="col">Availability</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${this.items.map((p) => html`<tr>
              <th scope="row"><a href="/admin/products/${encodeURIComponent(p.id)}">${p.name}</a></th>
              <td>${p.sku}</td>
              <td>${p.category}</td>
              <td class="num">${money(p.price.amount, p.price.currency)}</td>
              <td>${p.availability ? p.availability.status.replaceAll('_', ' ') : ''}${p.availability && p.availability.available != null ? ` (${p.availability.available})` : ''}</td>
              <td class="admin-row-actions">
                <a href="/admin/products/${encodeURIComponent(p.id)}" aria-label="Edit ${p.name} (${p.sku})">Edit</a>
                <a href="/admin/stock/${encodeURIComponent(p.sku)}" aria-label="Stock of ${p.name} (${p.sku})">Stock</a>
                <button type="button" class="btn-danger" data-action="delete" data-id="${p.id}" data-name="${p.name}" aria-label="Delete ${p.name} (${p.sku})">Delete</button>
              </td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      ${this.next ? html`<p><button type="button" data-action="more">More products</button></p>` : ''}`);
  }

  onSubmit(event) {
    event.preventDefault();
    this.q = new FormData(event.target).get('q').trim();
    this.load();
  }

  async onAction(action, target) {
    if (action === 'more') {
      this.load(this.next);
    } else if (action === 'delete') {
      const { id, name } = target.dataset;
      if (!(await confirmAction(`Delete the product “${name}”? It leaves the catalog; its SKU stays taken.`, 'Delete product'))) return;
      const answer = await call(`/products/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (answer.ok) {
        this.items = this.items.filter((p) => p.id !== id);
        setFlash(`Product “${name}” deleted.`);
        this.load();
      } else {
        announce(this, isDown(answer) ? downText(answer, 'The catalog') : problemText(answer, 'The product could not be deleted'), 'bad');
      }
    }
  }
}

class AdminProductForm extends Page {
  async load() {
    const id = this.getAttribute('product-id');
    render(this, html`<p>Loading…</p>`);
    const [list, answer] = await Promise.all([categories(), id ? call(`/products/${encodeURIComponent(id)}`) : null]);
    if (list === null || (answer && isDown(answer))) {
      render(this, frame(id ? 'Edit product' : 'New product', unavailable('The catalog')));
      return;
    }
    if (answer && !answer.ok) {
      render(this, frame('Product not found', html`<p>${problemText(answer, 'No such product')}</p><p><a href="/admin/products">All products</a></p>`));
      return;
    }
    const p = answer ? answer.data : null;
    this.product = p;
    const currency = p ? p.price.currency : 'EUR';
    render(this, frame(p ? `Edit ${p.name}` : 'New product', html`
      <form class="form admin-form" novalidate>
        <p role="alert" class="form-alert"></p>
        ${field('product-sku', 'SKU', {
          name: 'sku',
          value: p ? p.sku : '',
          attributes: p ? html`required readonly` : html`required`,
          hint: p ? 'A SKU cannot change; create a new product instead.' : undefined,
        })}
        ${field('product-name', 'Name', { name: 'name', value: p ? p.name : '', attributes: html`required` })}
        ${field('product-description', 'Description', {
          name: 'description', textarea: true, value: p ? p.description : '', attributes: html`rows="5"`,
        })}
        <div class="field-row">
          ${field('product-price', 'Price', {
            name: 'price.amount',
            value: p ? toMajor(p.price.amount, currency) : '',
            attributes: html`inputmode="decimal" required`,
            hint: 'In the currency\'s units, e.g. 19.99',
          })}
          ${field('product-currency', 'Currency', {
            name: 'price.currency', value: currency, attributes: html`required maxlength="3" size="4" autocapitalize="characters"`,
          })}
        </div>
        ${field('product-category', 'Category', {
          name: 'category',
          attributes: html`required`,
          options: categoryOptions(list, p ? p.category : '', { none: 'Choose a category' }),
        })}
        ${field('product-attributes', 'Attributes (JSON object, optional)', {
          name: 'attributes',
          textarea: true,
          value: p && p.attributes && Object.keys(p.attributes).length ? JSON.stringify(p.attributes, null, 2) : '',
          attributes: html`rows="3"`,
        })}
        <div class="admin-actions">
          <button type="submit" class="btn-primary">${p ? 'Save product' : 'Create product'}</button>
          ${p ? html`<button type="button" class="btn-danger" data-action="delete">Delete product</button>` : ''}
        </div>
      </form>
      ${p ? html`<p>Version ${p.version}, updated ${when(p.updated_at)}. <a href="/admin/stock/${encodeURIComponent(p.sku)}">Stock of this product</a> · <a href="/p/${encodeURIComponent(p.id)}">See it in the shop</a></p>` : ''}
      <p><a href="/admin/products">All products</a></p>`));
    const flash = takeFlash();
    if (flash) announce(this, flash);
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    this.busy(form, () => this.save(form, data));
  }

  async save(form, data) {
    clearProblem(form);
    const p = this.product;
    const currency = String(data.get('price.currency') || '').trim().toUpperCase();
    const errors = [];
    const amount = toMinor(data.get('price.amount'), currency || 'EUR');
    if (amount === null) errors.push({ field: 'price.amount', message: 'Enter an amount such as 19.99' });
    let attributes = {};
    const rawAttributes = String(data.get('attributes') || '').trim();
    if (rawAttributes) {
      try {
        attributes = JSON.parse(rawAttributes);
      } catch {
        errors.push({ field: 'attributes', message: 'must be a JSON object, e.g. {"colour": "red"}' });
      }
    }
    if (!String(data.get('category') || '')) errors.push({ field: 'category', message: 'Choose a category' });
    if (errors.length) {
      showProblem(form, { detail: 'Please correct the fields marked below.', errors });
      return;
    }
    const body = {
      name: data.get('name'),
      description: data.get('description'),
      price: { amount, currency },
      category: data.get('category'),
      attributes,
    };
    let answer;
    if (p) {
      answer = await call(`/products/${encodeURIComponent(p.id)}`, { method: 'PATCH', body, ifMatch: `"${p.version}"` });
    } else {
      answer = await call('/products', { method: 'POST', body: { sku: data.get('sku'), ...body } });
    }
    if (answer.ok) {
      setFlash(p ? `Product “${answer.data.name}” saved.` : `Product “${answer.data.name}” created. Set its stock from the Stock page.`);
      if (p) {
        this.load();
      } else {
        navigate(`/admin/products/${encodeURIComponent(answer.data.id)}`);
      }
    } else if (answer.status === 412) {
      showProblem(form, { detail: 'Someone else changed this product since you opened it. Reload the page to see their change, then edit again.' });
    } else {
      showFailure(form, answer, 'The catalog');
    }
  }

  async onAction(action) {
    if (action !== 'delete') return;
    const p = this.product;
    if (!(await confirmAction(`Delete the product “${p.name}”? It leaves the catalog; its SKU stays taken.`, 'Delete product'))) return;
    const answer = await call(`/products/${encodeURIComponent(p.id)}`, { method: 'DELETE' });
    if (answer.ok) {
      setFlash(`Product “${p.name}” deleted.`);
      navigate('/admin/products');
    } else {
      showFailure(this.querySelector('form'), answer, 'The catalog');
    }
  }
}

class AdminCategories extends Page {
  async load() {
    const list = await categories();
    if (list === null) {
      render(this, frame('Categories', unavailable('The catalog')));
      return;
    }
    this.list = list;
    render(this, frame('Categories', html`
      ${list.length === 0 ? html`<p>No categories yet.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Categories">
        <table>
          <caption>Categories (${list.length}), subcategories under their parent</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Slug</th><th scope="col">Parent</th><th scope="col">Description</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${list.map((c) => html`<tr>
              <th scope="row" class="depth-${Math.min(c.depth, 4)}">${c.name}</th>
              <td>${c.slug}</td>
              <td>${c.parent || ''}</td>
              <td>${c.description}</td>
              <td class="admin-row-actions">
                <a href="/admin/categories/${encodeURIComponent(c.slug)}" aria-label="Edit ${c.name}">Edit</a>
                <button type="button" class="btn-danger" data-action="delete" data-slug="${c.slug}" data-name="${c.name}" aria-label="Delete ${c.name}">Delete</button>
              </td>
            </tr>`)}
          </tbody>
        </table>
      </div>`}
      <h2>New category</h2>
      <form class="form admin-form" novalidate aria-label="New category">
        <p role="alert" class="form-alert"></p>
        ${categoryFields(list)}
        <button type="submit" class="btn-primary">Create category</button>
      </form>`));
    const flash = takeFlash();
    if (flash) announce(this, flash);
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    this.busy(form, async () => {
      clearProblem(form);
      const body = {
        slug: data.get('slug').trim(),
        name: data.get('name'),
        description: data.get('description'),
        parent: data.get('parent') || null,
      };
      const answer = await call('/categories', { method: 'POST', body });
      if (answer.ok) {
        setFlash(`Category “${body.name}” created.`);
        this.load();
      } else {
        showFailure(form, answer, 'The catalog');
      }
    });
  }

  async onAction(action, target) {
    if (action !== 'delete') return;
    const { slug, name } = target.dataset;
    if (!(await confirmAction(`Delete the category “${name}”? Only an empty category can be deleted.`, 'Delete category'))) return;
    const answer = await call(`/categories/${encodeURIComponent(slug)}`, { method: 'DELETE' });
    if (answer.ok) {
      setFlash(`Category “${name}” deleted.`);
      this.load();
    } else {
      announce(this, isDown(answer) ? downText(answer, 'The catalog') : problemText(answer, 'The category could not be deleted'), 'bad');
    }
  }
}

class AdminCategoryForm extends Page {
  async load() {
    const slug = this.getAttribute('slug');
    const [list, answer] = await Promise.all([categories(), call(`/categories/${encodeURIComponent(slug)}`)]);
    if (list === null || isDown(answer)) {
      render(this, frame('Edit category', unavailable('The catalog')));
      return;
    }
    if (!answer.ok) {
      render(this, frame('Category not found', html`<p>${problemText(answer, 'No such category')}</p><p><a href="/admin/categories">All categories</a></p>`));
      return;
    }
    const c = answer.data;
    this.category = c;
    const parents = list.filter((other) => other.slug !== c.slug);
    render(this, frame(`Edit category ${c.name}`, html`
      <form class="form admin-form" novalidate>
        <p role="alert" class="form-alert"></p>
        ${categoryFields(parents, c)}
        <div class="admin-actions">
          <button type="submit" class="btn-primary">Save category</button>
          <button type="button" class="btn-danger" data-action="delete">Delete category</button>
        </div>
      </form>
      <p><a href="/admin/categories">All categories</a></p>`));
    const flash = takeFlash();
    if (flash) announce(this, flash);
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const data = new FormData(form);
    this.busy(form, async () => {
      clearProblem(form);
      const c = this.category;
      const body = { name: data.get('name'), description: data.get('description') };
      const parent = data.get('parent') || null;
      if (parent !== (c.parent || null)) body.parent = parent;
      const answer = await call(`/categories/${encodeURIComponent(c.slug)}`, { method: 'PATCH', body });
      if (answer.ok) {
        setFlash(`Category “${body.name}” saved.`);
        this.load();
      } else {
        showFailure(form, answer, 'The catalog');
      }
    });
  }

  async onAction(action) {
    if (action !== 'delete') return;
    const c = this.category;
    if (!(await confirmAction(`Delete the category “${c.name}”? Only an empty category can be deleted.`, 'Delete category'))) return;
    const answer = await call(`/categories/${encodeURIComponent(c.slug)}`, { method: 'DELETE' });
    if (answer.ok) {
      setFlash(`Category “${c.name}” deleted.`);
      navigate('/admin/categories');
    } else {
      showFailure(this.querySelector('form'), answer, 'The catalog');
    }
  }
}

customElements.define('admin-products', AdminProducts);
customElements.define('admin-product-form', AdminProductForm);
customElements.define('admin-categories', AdminCategories);
customElements.define('admin-category-form', AdminCategoryForm);
