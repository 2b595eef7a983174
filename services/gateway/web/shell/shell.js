// The shell: owns the URL, loads each micro frontend's module when a page or region needs it, and
// keeps a failing one to its own region (docs/frontend.md).
import { render, html, unavailable, navigate, session, title } from 'agora/kit';

// Path pattern → micro frontend and element; `:name` segments become the element's attributes.
const PAGES = [
  ['/', 'catalog', 'catalog-home'],
  ['/search', 'catalog', 'catalog-search'],
  ['/c/:category', 'catalog', 'catalog-category'],
  ['/p/:product-id', 'catalog', 'catalog-product'],
  ['/cart', 'cart', 'cart-page'],
  ['/checkout', 'cart', 'cart-checkout'],
  ['/login', 'account', 'account-login'],
  ['/register', 'account', 'account-register'],
  ['/account', 'account', 'account-page'],
  ['/orders', 'orders', 'orders-history'],
  ['/orders/:order-id', 'orders', 'orders-detail'],
];

// What a person calls each micro frontend, for the "unavailable" message.
const NAMES = {
  catalog: 'The catalog',
  cart: 'The cart',
  account: 'The account area',
  orders: 'The order history',
  admin: 'The admin',
};

const loaded = new Map();

/** Imports micro frontend `name` once; resolves to whether it is usable. */
function load(name) {
  if (!loaded.has(name)) {
    loaded.set(name, import(`agora/${name}`).then(() => {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = `/ui/${name}/style.css`;
      document.head.append(link);
      return true;
    }, (error) => {
      console.warn(`micro frontend ${name} could not be loaded`, error);
      return false;
    }));
  }
  return loaded.get(name);
}

function match(path) {
  if (path === '/admin' || path.startsWith('/admin/')) {
    return { name: 'admin', element: 'admin-app', attributes: { path } };
  }
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, name, element] of PAGES) {
    const wanted = pattern.split('/').filter(Boolean);
    if (wanted.length !== parts.length) continue;
    const attributes = {};
    const fits = wanted.every((segment, i) => {
      if (segment.startsWith(':')) {
        attributes[segment.slice(1)] = decodeURIComponent(parts[i]);
        return true;
      }
      return segment === parts[i];
    });
    if (fits) return { name, element, attributes };
  }
  return null;
}

async function fill(container, name, element, attributes = {}) {
  if (!(await load(name))) {
    // A page (not a header region) still gets its heading, for people and screen readers.
    const heading = container.id === 'main' ? html`<h1>${NAMES[name]} is unavailable</h1>` : '';
    render(container, html`${heading}${unavailable(NAMES[name])}`);
    return;
  }
  const node = document.createElement(element);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  container.replaceChildren(node);
}

let shown = '';

async function show() {
  const main = document.getElementById('main');
  const { pathname, search } = window.location;
  if (pathname + search === shown) return;
  const first = shown === '';
  shown = pathname + search;
  const page = match(pathname);
  document.body.classList.toggle('is-admin', page?.name === 'admin');
  if (!page) {
    title('Page not found');
    render(main, html`<h1>Page not found</h1><p>There is no page at this address. <a href="/">Go to the shop</a>.</p>`);
  } else {
    title('');
    await fill(main, page.name, page.element, page.attributes);
  }
  // A new page is announced to screen readers by moving focus to it (not on the first load).
  if (!first) {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

// Same-origin links and the search form navigate without a page load.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!link || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href, window.location.href);
  if (url.origin !== window.location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/docs')) return;
  if (url.pathname === window.location.pathname && url.search === window.location.search && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

document.querySelector('.site-search')?.addEventListener('submit', (event) => {
  event.preventDefault();
  const query = new FormData(event.target).get('q') || '';
  navigate(`/search?q=${encodeURIComponent(String(query).trim())}`);
});

window.addEventListener('popstate', show);
window.addEventListener('agora:navigate', show);

// The header regions are independent of the page: each fails on its own.
fill(document.querySelector('[data-region=account]'), 'account', 'account-menu');
fill(document.querySelector('[data-region=cart]'), 'cart', 'cart-badge');
session();
show();
