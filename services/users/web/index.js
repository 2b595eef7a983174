// Micro frontend "account" (served by users at /ui/account/): the header's account menu, log in,
// register and the account page. Defines its custom elements and nothing else at import time
// (docs/frontend.md). Tokens never reach this code: the gateway keeps them in HttpOnly cookies.
import {
  api, clearProblem, currentUser, hasRole, html, navigate, render, setSession, showProblem, submitOnce, title, unavailable,
} from 'agora/kit';

const SESSION = 'agora:session';

/** Records the user signed in (`user`) or out (`null`) and tells every region (`agora:session`). */
const announce = setSession;

/** A same-origin path from `?next=`, so a crafted link cannot send the user to another site. */
function nextPath(fallback = '/') {
  const next = new URLSearchParams(window.location.search).get('next');
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) {
    return fallback;
  }
  // Back to the login or register page would look like nothing happened.
  if (/^\/(login|register)(\?|$)/.test(next)) return fallback;
  return next;
}

/** `?next=` for a link to the login page from where the user is now. */
function hereAsNext() {
  const here = window.location.pathname + window.location.search;
  if (/^\/(login|register)(\?|$)/.test(window.location.pathname) || here === '/') return '';
  return `?next=${encodeURIComponent(here)}`;
}


/** A problem for the fields left empty, in the API's shape, or null when all are filled. */
function missing(form, fields) {
  const errors = fields
    .filter(([name]) => !String(form.elements[name]?.value ?? '').trim())
    .map(([field, label]) => ({ field, message: `${label} is required.` }));
  return errors.length ? { title: 'Missing fields', detail: 'Please fill in the fields marked below.', errors } : null;
}

/**
 * Shows a failed answer on the form: a network failure or 5xx as "… is unavailable right now";
 * a problem's field errors on their fields, said to a person (the API's validation detail points
 * programmers at `errors`); an error for a field the form does not have in the alert.
 */
function fail(form, res, what) {
  if (res.status === 0 || res.status >= 500) {
    showProblem(form, { detail: `${what} is unavailable right now. Please try again in a moment.`, errors: [] });
    return;
  }
  const problem = res.problem ?? { detail: `${what} failed (HTTP ${res.status}).` };
  const errors = problem.errors ?? [];
  const placed = errors.filter((e) => form.elements[e.field] instanceof Element);
  const unplaced = errors.filter((e) => !placed.includes(e)).map((e) => `${e.field}: ${e.message}`);
  const detail = placed.length
    ? `Please correct the field${placed.length > 1 ? 's' : ''} marked below.`
    : errors.length ? '' : problem.detail ?? problem.title;
  showProblem(form, { ...problem, errors: placed, detail: [detail, ...unplaced].filter(Boolean).join(' ') });
}

function formValues(form, names) {
  const out = {};
  for (const name of names) out[name] = form.elements[name].value;
  return out;
}

const PASSWORD_HINT = 'At least 10 characters, not a common password, without your username.';

/**
 * One labelled field of the account forms (`<div class="field">`, required): its input of `type`
 * with `autocomplete`, `attributes` (a template) for the rest, and a `hint` tied to it by
 * `aria-describedby`.
 */
function field(id, label, name, { type = 'text', autocomplete, attributes = '', hint } = {}) {
  return html`<div class="field">
    <label for="${id}">${label}</label>
    <input id="${id}" name="${name}" type="${type}" autocomplete="${autocomplete}" required ${attributes}
      ${hint ? html`aria-describedby="${id}-hint"` : ''}>
    ${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}
  </div>`;
}

/** An email field. */
const emailField = (id, label) => field(id, label, 'email', { type: 'email', autocomplete: 'email' });

/**
 * A password field: the current password (`current`), or a new one with the users service's rules
 * (`new`, with its hint).
 */
function passwordField(id, label, name, kind) {
  if (kind === 'current') {
    return field(id, label, name, { type: 'password', autocomplete: 'current-password' });
  }
  return field(id, label, name, {
    type: 'password', autocomplete: 'new-password', attributes: html`minlength="10" maxlength="128"`, hint: PASSWORD_HINT,
  });
}

function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : new Intl.DateTimeFormat(undefined, { dateStyle: 'long' }).format(date);
}

// ---------------------------------------------------------------------------------------------
// <account-menu>: header links; follows agora:session.
class AccountMenu extends HTMLElement {
  constructor() {
    super();
    this.onSession = (event) => this.show(event.detail ?? null);
    // The login link carries where the user is when they click it, not where they were when the
    // header was drawn (the shell keeps the header across pages).
    this.addEventListener('click', (event) => {
      const link = event.target.closest('a[data-login]');
      if (link) link.setAttribute('href', `${link.dataset.login}${hereAsNext()}`);
      if (event.target.closest('button[data-logout]')) this.logout();
    });
  }

  connectedCallback() {
    window.addEventListener(SESSION, this.onSession);
    this.show(undefined);
    currentUser().then(
      (user) => this.show(user ?? null),
      () => this.show(null),
    );
  }

  disconnectedCallback() {
    window.removeEventListener(SESSION, this.onSession);
  }

  show(user) {
    this.user = user;
    if (user === undefined) {
      // Still asking: keep the place so the header does not jump.
      render(this, html`<div class="account-menu"></div>`);
      return;
    }
    if (!user) {
      render(this, html`<div class="account-menu">
        <a href="/login" data-login="/login">Log in</a>
        <a href="/register" data-login="/register">Register</a>
      </div>`);
      return;
    }
    render(this, html`<div class="account-menu">
      <span class="account-menu-name" title="Signed in">${user.username}</span>
      <a href="/account">Account</a>
      <a href="/orders">Orders</a>
      ${hasRole(user, 'admin') ? html`<a href="/admin">Admin</a>` : ''}
      <button type="button" class="linklike account-menu-logout" data-logout>Log out</button>
    </div>`);
  }

  async logout() {
    const button = this.querySelector('button[data-logout]');
    if (button) button.disabled = true;
    const res = await api('/session', { method: 'DELETE' });
    // 401: the session had already ended; signed out either way.
    if (res.ok || res.status === 401) {
      announce(null);
      navigate('/');
      return;
    }
    if (button) {
      button.disabled = false;
      button.textContent = 'Log out (try again)';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// <account-login>: POST /session; on success announces the user and goes to ?next= or /.
class AccountLogin extends HTMLElement {
  connectedCallback() {
    title('Log in');
    const next = nextPath();
    const register = next === '/' ? '/register' : `/register?next=${encodeURIComponent(next)}`;
    render(this, html`<section class="account-card" aria-labelledby="account-login-title">
      <h1 id="account-login-title">Log in</h1>
      <p class="notice account-already" data-already hidden></p>
      <form class="form account-form" novalidate>
        <p role="alert" class="form-alert"></p>
        ${field('account-login-login', 'Username or email', 'login', {
          autocomplete: 'username', attributes: html`autocapitalize="none" spellcheck="false"`,
        })}
        ${passwordField('account-login-password', 'Password', 'password', 'current')}
        <button type="submit" class="btn btn-primary">Log in</button>
      </form>
      <p>New here? <a href="${register}">Create an account</a></p>
    </section>`);
    const form = this.querySelector('form');
    submitOnce(form, () => this.login(form, next));
    // Already signed in (an old tab, a bookmarked link): say so; the form still switches accounts.
    currentUser().then((user) => {
      const already = this.querySelector('[data-already]');
      if (!user || !already) return;
      render(already, html`You are signed in as <strong>${user.username}</strong>.
        <a href="${next}">Continue</a> or log in as someone else.`);
      already.hidden = false;
    }, () => {});
  }

  disconnectedCallback() {
    clearTimeout(this.wait);
  }

  async login(form, next) {
    const empty = missing(form, [['login', 'Username or email'], ['password', 'Password']]);
    if (empty) {
      showProblem(form, empty);
      return;
    }
    const res = await api('/session', { method: 'POST', body: formValues(form, ['login', 'password']) });
    if (res.ok) {
      form.elements.password.value = '';
      announce(res.data ?? null);
      navigate(next);
      return;
    }
    form.elements.password.value = '';
    if (res.status === 429) {
      this.throttled(form, res);
      return;
    }
    fail(form, res, 'Logging in');
  }

  /** Shows the throttle's wait and keeps the button off until it has passed. */
  throttled(form, res) {
    const header = res.headers?.get?.('retry-after');
    const seconds = Math.max(1, Math.min(3600, Number.parseInt(header ?? '', 10) || 60));
    const wait = seconds >= 120 ? `${Math.ceil(seconds / 60)} minutes` : `${seconds} seconds`;
    showProblem(form, {
      ...(res.problem ?? {}),
      detail: `Too many failed logins. Wait ${wait}, then try again.`,
    });
    const button = form.querySelector('button[type=submit]');
    // submitOnce re-enables the form once this handler has returned; the wait keeps this button off.
    setTimeout(() => {
      button.disabled = true;
    }, 0);
    clearTimeout(this.wait);
    this.wait = setTimeout(() => {
      button.disabled = false;
    }, seconds * 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// <account-register>: POST /api/users, then logs in through POST /session.
class AccountRegister extends HTMLElement {
  connectedCallback() {
    title('Create an account');
    const next = nextPath();
    const login = next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`;
    render(this, html`<section class="account-card" aria-labelledby="account-register-title">
      <h1 id="account-register-title">Create an account</h1>
      <form class="form account-form" novalidate>
        <p role="alert" class="form-alert"></p>
        ${field('account-register-username', 'Username', 'username', {
          autocomplete: 'username',
          attributes: html`autocapitalize="none" spellcheck="false" minlength="3" maxlength="32"`,
          hint: '3 to 32 characters: a–z, 0–9, “_”, “.” and “-”.',
        })}
        ${emailField('account-register-email', 'Email')}
        ${passwordField('account-register-password', 'Password', 'password', 'new')}
        <button type="submit" class="btn btn-primary">Create account</button>
      </form>
      <p>Already have an account? <a href="${login}">Log in</a></p>
    </section>`);
    const form = this.querySelector('form');
    submitOnce(form, () => this.register(form, next));
  }

  async register(form, next) {
    const empty = missing(form, [['username', 'Username'], ['email', 'Email'], ['password', 'Password']]);
    if (empty) {
      showProblem(form, empty);
      return;
    }
    const body = formValues(form, ['username', 'email', 'password']);
    const res = await api('/api/users', { method: 'POST', body });
    if (!res.ok) {
      fail(form, res, 'Registration');
      return;
    }
    const session = await api('/session', {
      method: 'POST',
      body: { login: res.data?.username ?? body.username, password: body.password },
    });
    form.elements.password.value = '';
    if (!session.ok) {
      // The account exists; only the automatic login failed.
      showProblem(form, {
        detail: 'Your account was created, but logging you in failed. Please log in (link below).',
      });
      return;
    }
    announce(session.data ?? null);
    navigate(next);
  }
}

// ---------------------------------------------------------------------------------------------
// <account-page>: the account's details, email change and password change (PATCH /api/users/me,
// both with the current password).
class AccountPage extends HTMLElement {
  connectedCallback() {
    title('Your account');
    this.load();
  }

  async load() {
    render(this, html`<h1>Your account</h1><p class="muted">Loading your account…</p>`);
    const res = await api('/api/users/me');
    if (res.status === 401) {
      render(this, html`<h1>Your account</h1>
        <p>You are not signed in. <a href="/login?next=${encodeURIComponent('/account')}">Log in</a> to see your account.</p>`);
      return;
    }
    if (!res.ok) {
      render(this, html`<h1>Your account</h1>
        ${unavailable('Your account')}
        <p><button type="button" class="btn" data-retry>Try again</button></p>`);
      this.querySelector('[data-retry]').addEventListener('click', () => this.load());
      return;
    }
    this.show(res.data);
  }

  show(user) {
    this.user = user;
    render(this, html`<h1>Your account</h1>
      <section class="panel account-card" aria-labelledby="account-details-title">
        <h2 id="account-details-title">Details</h2>
        <dl class="account-details">
          <dt>Username</dt><dd>${user.username}</dd>
          <dt>Email</dt><dd data-testid="account-email">${user.email}</dd>
          <dt>Member since</dt><dd>${formatDate(user.created_at)}</dd>
        </dl>
        <p><a href="/orders">Your orders</a></p>
      </section>

      <section class="account-card" aria-labelledby="account-email-title">
        <h2 id="account-email-title">Change email</h2>
        <form class="form account-form" data-form="email" novalidate>
          <p role="alert" class="form-alert"></p>
          <p role="status" class="success account-status"></p>
          ${emailField('account-email-new', 'New email')}
          ${passwordField('account-email-current', 'Current password', 'current_password', 'current')}
          <button type="submit" class="btn btn-primary">Change email</button>
        </form>
      </section>

      <section class="account-card" aria-labelledby="account-password-title">
        <h2 id="account-password-title">Change password</h2>
        <form class="form account-form" data-form="password" novalidate>
          <p role="alert" class="form-alert"></p>
          <p role="status" class="success account-status"></p>
          ${passwordField('account-password-current', 'Current password', 'current_password', 'current')}
          ${passwordField('account-password-new', 'New password', 'password', 'new')}
          ${field('account-password-confirm', 'Confirm password', 'confirm', { type: 'password', autocomplete: 'new-password' })}
          <button type="submit" class="btn btn-primary">Change password</button>
        </form>
      </section>`);
    const emailForm = this.querySelector('[data-form=email]');
    const passwordForm = this.querySelector('[data-form=password]');
    submitOnce(emailForm, () => this.changeEmail(emailForm));
    submitOnce(passwordForm, () => this.changePassword(passwordForm));
  }

  async changeEmail(form) {
    status(form, '');
    const empty = missing(form, [['email', 'New email'], ['current_password', 'Current password']]);
    if (empty) {
      showProblem(form, empty);
      return;
    }
    const res = await this.patch(form, formValues(form, ['email', 'current_password']));
    if (!res) return;
    form.reset();
    this.user = res.user;
    this.querySelector('[data-testid=account-email]').textContent = res.user.email;
    status(form, `Your email is now ${res.user.email}.`);
    announce(res.user);
  }

  async changePassword(form) {
    status(form, '');
    const empty = missing(form, [
      ['current_password', 'Current password'],
      ['password', 'New password'],
      ['confirm', 'Confirm password'],
    ]);
    if (empty) {
      showProblem(form, empty);
      return;
    }
    const { password, confirm, current_password: current } = formValues(form, ['password', 'confirm', 'current_password']);
    if (password !== confirm) {
      showProblem(form, {
        detail: 'The new passwords do not match.',
        errors: [{ field: 'confirm', message: 'does not match the new password.' }],
      });
      return;
    }
    const res = await this.patch(form, { password, current_password: current });
    if (!res) return;
    form.reset();
    // A password change ends every login of the user, this browser's too (users revokes every
    // refresh-token family): log in again through the gateway so the session cookies are new.
    // The token pair in the answer is not used: tokens belong in the gateway's cookies.
    const session = await api('/session', {
      method: 'POST',
      body: { login: res.user.username, password },
    });
    if (session.ok) {
      status(form, 'Your password has been changed. Other devices have been signed out.');
      announce(session.data ?? res.user);
    } else {
      status(form, 'Your password has been changed. Please log in again with the new password.');
      announce(null);
    }
  }

  /** PATCH /api/users/me; the answer's body, or null after showing why it failed. */
  async patch(form, body) {
    const res = await api('/api/users/me', { method: 'PATCH', body });
    if (res.ok) return res.data;
    if (res.status === 403) {
      showProblem(form, {
        ...(res.problem ?? {}),
        detail: res.problem?.detail ?? 'The current password is wrong.',
        errors: [{ field: 'current_password', message: 'is wrong.' }],
      });
    } else if (res.status === 401) {
      showProblem(form, { detail: 'Your session has ended. Please log in again.' });
    } else {
      fail(form, res, 'Changing your account');
    }
    if (form.elements.current_password) form.elements.current_password.value = '';
    return null;
  }
}

/** The form's polite success message (its alert is for failures). */
function status(form, text) {
  const node = form.querySelector('[role=status]');
  if (node) node.textContent = text;
  if (text) clearProblem(form);
}

const elements = {
  'account-menu': AccountMenu,
  'account-login': AccountLogin,
  'account-register': AccountRegister,
  'account-page': AccountPage,
};
for (const [name, element] of Object.entries(elements)) {
  // A second copy of this module (another URL) must not throw.
  if (!customElements.get(name)) customElements.define(name, element);
}
