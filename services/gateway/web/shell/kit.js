// The kit every micro frontend imports as `agora/kit` (docs/frontend.md): one copy, loaded once
// through the shell's import map. It holds what all of them need and nothing domain-specific.

// ---- Templates: interpolations are escaped unless they are templates themselves. ----

class Safe {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function toHtml(value) {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Safe) return value.text;
  if (Array.isArray(value)) return value.map(toHtml).join('');
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A template: `html\`<p>${text}</p>\`` escapes `text`; nested templates and arrays of them are kept. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => { out += toHtml(value) + strings[i + 1]; });
  return new Safe(out);
}

/** Replaces `element`'s content with `template`. */
export function render(element, template) {
  element.innerHTML = toHtml(template);
}

// ---- Money ----

const fractionDigits = new Map();

/** `minor` units of `currency` formatted for the page's locale, e.g. money(1999, 'EUR') → "€19.99". */
export function money(minor, currency) {
  const locale = navigator.language || 'en';
  if (typeof minor !== 'number' || !currency) return '';
  if (!fractionDigits.has(currency)) {
    try {
      fractionDigits.set(currency, new Intl.NumberFormat('en', { style: 'currency', currency })
        .resolvedOptions().maximumFractionDigits);
    } catch {
      fractionDigits.set(currency, 2);
    }
  }
  const digits = fractionDigits.get(currency);
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

/** A date-time for people, in the page's locale. */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(navigator.language || 'en', { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

// ---- Calling the gateway ----

function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split('; ').find((c) => c.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : '';
}

/** The CSRF token the gateway checks on unsafe requests; `GET /session` sets it when missing. */
async function csrfToken() {
  let token = cookie('agora_csrf');
  if (!token) {
    try { await fetch('/session', { credentials: 'same-origin' }); } catch { /* offline: the call below fails clearly */ }
    token = cookie('agora_csrf');
  }
  return token;
}

const UNREACHABLE = {
  title: 'The shop could not be reached',
  detail: 'Check your connection and try again.',
};

/**
 * Calls the gateway. Resolves to `{ok, status, data, problem, headers}` and never throws for an
 * HTTP status; a network failure resolves with `status: 0`. The browser sends the session cookies;
 * the kit adds the CSRF header on unsafe methods and, once, refreshes an expired session.
 */
export async function api(path, { method = 'GET', body, idempotencyKey, ifMatch, headers = {} } = {}, retried = false) {
  const sent = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') {
    const token = await csrfToken();
    if (token) sent['X-CSRF-Token'] = token;
  }
  if (idempotencyKey) sent['Idempotency-Key'] = idempotencyKey;
  if (ifMatch) sent['If-Match'] = ifMatch;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    return { ok: false, status: 0, data: null, problem: UNREACHABLE, headers: new Headers() };
  }
  if (response.status === 401 && !retried && !path.startsWith('/session')) {
    if (await refreshSession()) return api(path, { method, body, idempotencyKey, ifMatch, headers }, true);
  }
  let parsed = null;
  const type = response.headers.get('content-type') || '';
  if (type.includes('json')) {
    try { parsed = await response.json(); } catch { parsed = null; }
  }
  if (response.ok) {
    return { ok: true, status: response.status, data: parsed, problem: null, headers: response.headers };
  }
  const problem = parsed && typeof parsed === 'object'
    ? parsed
    : { title: response.statusText || 'Request failed', status: response.status };
  return { ok: false, status: response.status, data: null, problem, headers: response.headers };
}

/** A fresh random key, e.g. for `Idempotency-Key`. */
export function newKey() {
  return crypto.randomUUID();
}

// ---- The session (the gateway keeps the tokens in HttpOnly cookies; pages see only the user) ----

let sessionPromise = null;

/**
 * The signed-in user, or `null`. Asked once per page load and kept until it changes. `GET /session`
 * answers a guest `{signed_in: false}`; a 401 means the access cookie ran out while the refresh
 * cookie may still hold a session: refreshed once, then asked again.
 */
export function session() {
  if (!sessionPromise) {
    sessionPromise = (async () => {
      let result = await api('/session');
      if (result.status === 401 && await refreshSession()) result = await api('/session');
      return result.ok && result.data?.signed_in !== false ? result.data : null;
    })();
  }
  return sessionPromise;
}

export const currentUser = session;

/** Records a log-in (`user`) or log-out (`null`) and tells every micro frontend (`agora:session`). */
export function setSession(user) {
  sessionPromise = Promise.resolve(user);
  window.dispatchEvent(new CustomEvent('agora:session', { detail: user }));
}

async function refreshSession() {
  const token = await csrfToken();
  try {
    const response = await fetch('/session/refresh', {
      method: 'POST',
      headers: token ? { 'X-CSRF-Token': token } : {},
      credentials: 'same-origin',
    });
    if (response.ok) return true;
  } catch { /* falls through: signed out */ }
  setSession(null);
  return false;
}

/** Whether `user` has `role` (the users service's `roles` list). */
export function hasRole(user, role) {
  return Boolean(user && Array.isArray(user.roles) && user.roles.includes(role));
}

/** Tells every micro frontend that the cart changed (`agora:cart`). */
export function cartChanged(cart) {
  window.dispatchEvent(new CustomEvent('agora:cart', { detail: cart ?? null }));
}

// ---- Forms ----

/** The form's fields as a plain object (strings; empty fields left out). */
export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string' && value.trim() !== '') values[name] = value.trim();
  }
  return values;
}

function alertRegion(form) {
  let region = form.querySelector('[role=alert]');
  if (!region) {
    region = document.createElement('p');
    region.setAttribute('role', 'alert');
    region.className = 'form-alert';
    form.prepend(region);
  }
  return region;
}

/** Clears what `showProblem` put on `form`. */
export function clearProblem(form) {
  form.querySelectorAll('[aria-invalid=true]').forEach((field) => {
    field.removeAttribute('aria-invalid');
    const described = (field.getAttribute('aria-describedby') || '').split(' ').filter((id) => !id.endsWith('-error'));
    if (described.length) field.setAttribute('aria-describedby', described.join(' '));
    else field.removeAttribute('aria-describedby');
  });
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  const region = form.querySelector('[role=alert]');
  if (region) region.textContent = '';
}

/**
 * Shows a problem+json answer on `form`: each `errors[]` entry on its field (by `name`, or by the
 * last part of a dotted path such as `shipping_address.city`), the `detail` in the form's alert.
 */
export function showProblem(form, problem) {
  clearProblem(form);
  if (!problem) return;
  const unplaced = [];
  for (const { field, message } of problem.errors || []) {
    const input = form.elements.namedItem(field) || form.elements.namedItem(String(field).split('.').pop());
    if (!input || !(input instanceof HTMLElement) || !input.id) {
      unplaced.push(`${field}: ${message}`);
      continue;
    }
    const note = document.createElement('p');
    note.className = 'field-error';
    note.id = `${input.id}-error`;
    note.textContent = message;
    input.setAttribute('aria-invalid', 'true');
    const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    input.setAttribute('aria-describedby', [...described, note.id].join(' '));
    input.insertAdjacentElement('afterend', note);
  }
  const text = [problem.detail || problem.title, ...unplaced].filter(Boolean).join(' ');
  alertRegion(form).textContent = text;
  const first = form.querySelector('[aria-invalid=true]');
  if (first) first.focus();
}

/**
 * Runs `handler(values, form)` on submit, with the form's buttons disabled until it settles: a double
 * click sends once.
 */
export function submitOnce(form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.dataset.busy) return;
    form.dataset.busy = 'true';
    form.setAttribute('aria-busy', 'true');
    const buttons = [...form.querySelectorAll('button, input[type=submit]')];
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await handler(formValues(form), form);
    } finally {
      delete form.dataset.busy;
      form.removeAttribute('aria-busy');
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
}

// ---- Navigation and regions ----

/** Client-side navigation to `path` (the shell renders the page). */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  window.dispatchEvent(new CustomEvent('agora:navigate'));
}

/** What a region shows when the service behind it cannot be reached. */
export function unavailable(what) {
  return html`<div class="unavailable" role="status"><p><strong>${what} is unavailable right now.</strong>
    The rest of the shop still works; try again in a moment.</p></div>`;
}

/**
 * A failed call as a person reads it: the service's own words for a 4xx; for a network failure or
 * a 5xx, that `what` is unavailable right now.
 */
export function failure(result, what) {
  if (result.status === 0 || result.status >= 500) {
    return `${what} is unavailable right now. Please try again in a moment.`;
  }
  return result.problem?.detail || result.problem?.title || `${what} answered ${result.status}.`;
}

/** What a page shows in place of data it could not load, with a "Try again" button (`data-retry`). */
export function failed(result, what) {
  const message = result.status === 0 || result.status >= 500
    ? unavailable(what)
    : html`<p class="notice" role="alert">${failure(result, what)}</p>`;
  return html`${message}<p><button type="button" class="btn" data-retry>Try again</button></p>`;
}

/** Sets the page's title ("… — Agora"). */
export function title(text) {
  document.title = text ? `${text} — Agora` : 'Agora';
}
