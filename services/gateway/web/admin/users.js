// Users: every account (search), disable/enable, roles.
import { currentUser } from 'agora/kit';
import {
  Page, call, html, render, showFailure, clearProblem, announce, frame, unavailable, isDown,
  problemText, query, when, confirmAction, setFlash, takeFlash, downText, searchForm,
} from './lib.js';

const ROLES = ['customer', 'admin'];

/** Disables or enables an account after asking; answers the updated user or null. */
async function setDisabled(page, user, disabled) {
  const verb = disabled ? 'Disable' : 'Enable';
  const question = disabled
    ? `Disable ${user.username}? They can no longer log in.`
    : `Enable ${user.username}? They can log in again.`;
  if (!(await confirmAction(question, `${verb} account`))) return null;
  const answer = await call(`/users/${encodeURIComponent(user.id)}`, { method: 'PATCH', body: { disabled } });
  if (answer.ok) {
    announce(page, `${user.username} ${disabled ? 'disabled' : 'enabled'}.`);
    return answer.data;
  }
  announce(page, isDown(answer) ? downText(answer, 'Users') : problemText(answer, `${user.username} could not be changed`), 'bad');
  return null;
}

class AdminUsers extends Page {
  async load(cursor) {
    if (!cursor) {
      this.items = [];
      render(this, frame('Users', html`
        ${searchForm('users-q', 'User search (name or email)', 'Find users', this.q)}
        <div class="admin-results"></div>`));
      const flash = takeFlash();
      if (flash) announce(this, flash);
    }
    const [answer, me] = await Promise.all([call(`/users${query({ q: this.q, limit: 25, cursor })}`), currentUser().catch(() => null)]);
    this.me = me;
    const results = this.querySelector('.admin-results');
    if (!answer.ok) {
      render(results, isDown(answer) ? unavailable('Users') : html`<p role="alert">${problemText(answer, 'The users could not be listed')}</p>`);
      return;
    }
    this.items = this.items.concat(answer.data.items);
    this.next = answer.data.next_cursor;
    this.showRows();
  }

  showRows() {
    render(this.querySelector('.admin-results'), this.items.length === 0 ? html`<p>No users match.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Users">
        <table>
          <caption>Users (${this.items.length}${this.next ? '+' : ''})</caption>
          <thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Roles</th><th scope="col">Account</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${this.items.map((u) => html`<tr>
              <th scope="row"><a href="/admin/users/${encodeURIComponent(u.id)}">${u.username}</a></th>
              <td>${u.email}</td>
              <td>${u.roles.join(', ')}</td>
              <td>${u.disabled ? html`<span class="badge badge--bad">disabled</span>` : 'active'}</td>
              <td>${when(u.created_at)}</td>
              <td class="admin-row-actions">
                <a href="/admin/users/${encodeURIComponent(u.id)}" aria-label="Roles of ${u.username}">Roles</a>
                ${this.me && this.me.id === u.id ? html`<span class="muted">(you)</span>` : html`<button type="button" data-action="toggle" data-id="${u.id}" ${u.disabled ? '' : html`class="btn-danger"`} aria-label="${u.disabled ? 'Enable' : 'Disable'} ${u.username}">${u.disabled ? 'Enable' : 'Disable'}</button>`}
              </td>
            </tr>`)}
          </tbody>
        </table>
      </div>
      ${this.next ? html`<p><button type="button" data-action="more">More users</button></p>` : ''}`);
  }

  onSubmit(event) {
    event.preventDefault();
    this.q = String(new FormData(event.target).get('q') || '').trim();
    this.load();
  }

  async onAction(action, target) {
    if (action === 'more') {
      this.load(this.next);
    } else if (action === 'toggle') {
      const user = this.items.find((u) => u.id === target.dataset.id);
      if (!user) return;
      const updated = await setDisabled(this, user, !user.disabled);
      if (updated) {
        this.items = this.items.map((u) => (u.id === updated.id ? updated : u));
        const label = `${updated.disabled ? 'Enable' : 'Disable'} ${updated.username}`;
        this.showRows();
        // Keep the keyboard where it was: on the same row's (renamed) button.
        const again = [...this.querySelectorAll('[data-action=toggle]')].find((b) => b.getAttribute('aria-label') === label);
        if (again) again.focus();
      }
    }
  }
}

class AdminUser extends Page {
  async load() {
    const id = this.getAttribute('user-id');
    const [answer, me] = await Promise.all([call(`/users/${encodeURIComponent(id)}`), currentUser().catch(() => null)]);
    if (!answer.ok) {
      render(this, frame('User', isDown(answer) ? unavailable('Users') : html`<p>${problemText(answer, 'No such user')}</p><p><a href="/admin/users">All users</a></p>`));
      return;
    }
    this.show(answer.data, me);
    const flash = takeFlash();
    if (flash) announce(this, flash);
  }

  show(u, me) {
    this.user = u;
    const self = me && me.id === u.id;
    render(this, frame(`User ${u.username}`, html`
      <dl class="admin-facts">
        <div><dt>User id</dt><dd class="mono">${u.id}</dd></div>
        <div><dt>Email</dt><dd>${u.email}</dd></div>
        <div><dt>Account</dt><dd>${u.disabled ? 'disabled' : 'active'}</dd></div>
        <div><dt>Created</dt><dd>${when(u.created_at)}</dd></div>
      </dl>
      <p><a href="/admin/orders?user_id=${encodeURIComponent(u.id)}">Orders of ${u.username}</a></p>
      <h2>Roles</h2>
      <form class="form admin-form" novalidate aria-label="Roles">
        <p role="alert" class="form-alert"></p>
        <fieldset>
          <legend>Roles of ${u.username}</legend>
          <div class="field" data-field="roles">
            ${ROLES.map((r) => html`<label class="check"><input type="checkbox" name="roles" value="${r}" ${u.roles.includes(r) ? html`checked` : ''}> ${r}</label>`)}
          </div>
        </fieldset>
        ${self ? html`<p class="hint">This is your own account: removing admin ends your access to the admin.</p>` : ''}
        <button type="submit" class="btn-primary">Save roles</button>
      </form>
      <h2>Access</h2>
      ${self ? html`<p>This is your own account: another admin can disable it, you cannot.</p>` : html`<p>
        <button type="button" data-action="toggle" ${u.disabled ? '' : html`class="btn-danger"`}>${u.disabled ? 'Enable account' : 'Disable account'}</button>
      </p>`}
      <p><a href="/admin/users">All users</a></p>`));
  }

  onSubmit(event) {
    event.preventDefault();
    const form = event.target;
    const roles = new FormData(form).getAll('roles');
    this.busy(form, async () => {
      clearProblem(form);
      const answer = await call(`/users/${encodeURIComponent(this.user.id)}`, { method: 'PATCH', body: { roles } });
      if (answer.ok) {
        setFlash(`Roles of ${answer.data.username} saved: ${answer.data.roles.join(', ')}.`);
        this.load();
      } else {
        showFailure(form, answer, 'Users');
      }
    });
  }

  async onAction(action) {
    if (action === 'toggle') {
      const updated = await setDisabled(this, this.user, !this.user.disabled);
      if (updated) {
        const me = await currentUser().catch(() => null);
        const text = this.querySelector('[data-announce]').textContent;
        this.show(updated, me);
        announce(this, text);
        this.querySelector('[data-action=toggle]').focus();
      }
    }
  }
}

customElements.define('admin-users', AdminUsers);
customElements.define('admin-user', AdminUser);
