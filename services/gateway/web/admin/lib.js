// Helpers shared by the admin pages: calls through the kit, messages, confirmation, formatting.
import { api, html, render, money, showProblem, clearProblem, when, newKey, title } from 'agora/kit';

export { html, render, money, showProblem, clearProblem, when, newKey };

/** A call to the gateway's API (`/api/...`), cookies and CSRF handled by the kit. */
export function call(path, options = {}) {
  return api(`/api${path}`, options);
}

/** True when an answer means the service behind it could not be reached or failed. */
export function isDown(answer) {
  return answer.status === 0 || answer.status >= 500;
}

/**
 * What to say when a service is down: its 5xx answer's own words when it gives some ("The
 * payment could not be captured now; the order is still confirmed"), else that it is unavailable.
 */
export function downText(answer, service) {
  const detail = answer.status !== 0 && answer.problem && answer.problem.detail;
  return detail || `${service} is unavailable right now. Try again in a moment.`;
}

/** The block shown in place of a page (or part) whose API cannot be reached. */
export function unavailable(what) {
  return html`<div class="unavailable" role="alert"><p><strong>${what} is unavailable right now.</strong> Try again in a moment.</p></div>`;
}

/** A problem's human text: its detail, else its title, else the HTTP status. */
export function problemText(answer, fallback) {
  const p = answer.problem || {};
  return p.detail || p.title || `${fallback} (HTTP ${answer.status})`;
}

/**
 * Shows an answer's failure: on the form's fields when it is a problem with `errors`, in the
 * form's alert otherwise ("… is unavailable right now" for a network failure or a 5xx).
 */
export function showFailure(form, answer, service) {
  if (isDown(answer)) {
    showProblem(form, { detail: downText(answer, service) });
  } else {
    const problem = answer.problem || { detail: `The request failed (HTTP ${answer.status}).` };
    // The API's validation detail speaks to programmers ("see `errors`"): say it to a person.
    // The kit puts a field error on its field when the form has one control of that name, and
    // says the others (a group of checkboxes, a field the form does not show) in the alert.
    const placeable = (e) => form.elements[e.field] instanceof Element;
    const errors = problem.errors || [];
    const fields = errors.filter(placeable);
    const detail = fields.length ? `Please correct the field${fields.length > 1 ? 's' : ''} marked below.` : errors.length ? 'Please correct this:' : problem.detail;
    showProblem(form, { ...problem, detail });
  }
}

/**
 * Puts `text` in the page's `[role=status]` live region, so it is announced: a result (`ok`) or a
 * failure (`bad`), styled as such.
 */
export function announce(element, text, tone = 'ok') {
  const region = element.querySelector('[data-announce]');
  if (!region) return;
  region.textContent = text;
  region.classList.toggle('success', Boolean(text) && tone === 'ok');
  region.classList.toggle('notice', Boolean(text) && tone !== 'ok');
}

const TONES = {
  ok: ['confirmed', 'delivered', 'authorized', 'captured', 'succeeded', 'active', 'healthy', 'closed'],
  warn: ['pending', 'shipped', 'capture_pending', 'void_pending', 'refunded', 'voided'],
  bad: ['rejected', 'payment_failed', 'cancelled', 'declined', 'failed', 'disabled', 'unhealthy', 'open'],
};

/** The shell's badge class for a status word. */
export function tone(status) {
  for (const [name, statuses] of Object.entries(TONES)) {
    if (statuses.includes(status)) return `badge badge--${name}`;
  }
  return 'badge';
}

// A message kept across one navigation ("Product deleted."), shown by the next page.
let flash = '';
export function setFlash(text) {
  flash = text;
}
export function takeFlash() {
  const text = flash;
  flash = '';
  return text;
}

/**
 * Asks before a destructive action, in a modal <dialog> (focus moves into it, Escape cancels).
 * Resolves to true when the person confirms.
 */
export function confirmAction(message, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = document.createElement('dialog');
    dialog.className = 'admin-confirm';
    dialog.setAttribute('aria-labelledby', 'admin-confirm-text');
    render(dialog, html`
      <form method="dialog">
        <p id="admin-confirm-text">${message}</p>
        <div class="admin-actions">
          <button value="yes" class="btn-danger">${confirmLabel}</button>
          <button value="no" autofocus>Cancel</button>
        </div>
      </form>`);
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'yes');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * The last characters of an id, enough to tell rows apart (the full id is in the title/link):
 * the ids are UUIDv7, whose first characters are a timestamp shared by neighbours.
 */
export function short(id) {
  return id ? String(id).slice(-8) : '';
}

/** Decimal places of a currency (2 for EUR, 0 for JPY). */
export function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** Minor units → the decimal text a person types ("1999" EUR → "19.99"). */
export function toMajor(minor, currency) {
  const digits = fractionDigits(currency);
  return (minor / 10 ** digits).toFixed(digits);
}

/**
 * The decimal text a person typed → minor units, or null when it is not an amount with at most
 * the currency's decimal places. Integer arithmetic, no float rounding surprises.
 */
export function toMinor(text, currency) {
  const digits = fractionDigits(currency);
  const match = /^\s*(\d+)(?:[.,](\d*))?\s*$/.exec(text || '');
  if (!match) return null;
  const fraction = match[2] || '';
  if (fraction.length > digits) return null;
  const minor = Number(match[1]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || 0);
  return Number.isSafeInteger(minor) ? minor : null;
}

/** A status as words ("payment_failed" → "payment failed"). */
export function words(text) {
  return String(text || '').replaceAll('_', ' ');
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * One labelled field of an admin form (`<div class="field">`): an `<input>` by default, or a
 * `<textarea>` (`textarea: true`, `value` its text) or a `<select>` (`options` its markup).
 * `attributes` is a template of the control's other attributes (`required`, `type="search"`);
 * a `hint` is shown under the control and tied to it by `aria-describedby`.
 */
export function field(id, label, { name = id, value = '', attributes = '', hint, textarea = false, options } = {}) {
  const described = hint ? html`aria-describedby="${id}-hint"` : '';
  let control;
  if (options !== undefined) {
    control = html`<select id="${id}" name="${name}" ${attributes} ${described}>${options}</select>`;
  } else if (textarea) {
    control = html`<textarea id="${id}" name="${name}" ${attributes} ${described}>${value}</textarea>`;
  } else {
    control = html`<input id="${id}" name="${name}" value="${value}" ${attributes} ${described}>`;
  }
  return html`<div class="field">
    <label for="${id}">${label}</label>
    ${control}
    ${hint ? html`<p id="${id}-hint" class="hint">${hint}</p>` : ''}
  </div>`;
}

/**
 * A list page's search form: one search box named `q` and its button; `action` ("Find products")
 * is the button's text and the form's accessible name.
 */
export function searchForm(id, label, action, value) {
  return html`<form class="admin-filters" role="search" aria-label="${action}">
    ${field(id, label, { name: 'q', value: value || '', attributes: html`type="search"` })}
    <button type="submit" class="btn-primary">${action}</button>
  </form>`;
}

/** The standard page frame: a heading, the announcement region, and the page's body. */
export function frame(heading, body) {
  title(`${heading} · Admin`);
  return html`<h1>${heading}</h1>
    <p role="status" class="admin-announce" data-announce></p>
    ${body}`;
}

/** Base class of the admin pages: one render + delegated listeners, and a load on connect. */
export class Page extends HTMLElement {
  connectedCallback() {
    if (!this.wired) {
      this.wired = true;
      this.addEventListener('submit', (event) => this.onSubmit(event));
      this.addEventListener('click', (event) => {
        const target = event.target.closest('[data-action]');
        if (target && this.contains(target)) this.onAction(target.dataset.action, target, event);
      });
    }
    this.load();
  }

  async load() {}

  // eslint-disable-next-line no-unused-vars
  onSubmit(event) {}

  // eslint-disable-next-line no-unused-vars
  onAction(action, target, event) {}

  /** Runs `work` with the form disabled, so a double click sends once. */
  async busy(form, work) {
    if (form.dataset.busy) return;
    form.dataset.busy = '1';
    announce(this, ''); // an earlier result is not this attempt's
    const controls = [...form.elements].filter((c) => !c.disabled);
    controls.forEach((c) => { c.disabled = true; });
    form.setAttribute('aria-busy', 'true');
    try {
      await work();
    } finally {
      controls.forEach((c) => { c.disabled = false; });
      form.removeAttribute('aria-busy');
      delete form.dataset.busy;
    }
  }
}
