// Dead letters: the events each consuming service gave up on, and replaying them.
import {
  Page, call, html, render, announce, frame, unavailable, isDown, problemText, when, short, confirmAction, downText,
} from './lib.js';

/** The services that consume events (each has `/admin/dead-letters`), as the gateway routes them. */
export const CONSUMERS = [
  ['products', 'Products'],
  ['inventory', 'Inventory'],
  ['orders', 'Orders'],
  ['carts', 'Carts'],
];

class AdminDeadLetters extends Page {
  async load() {
    render(this, frame('Dead letters', html`
      <p>Events a service could not apply after its retries. Replay one once its cause is fixed: it is removed when it applies, kept when it fails again.</p>
      ${CONSUMERS.map(([key, label]) => html`<section aria-labelledby="dl-${key}">
        <h2 id="dl-${key}">${label}</h2>
        <div data-service="${key}"><p>Loading…</p></div>
      </section>`)}`));
    await Promise.all(CONSUMERS.map(([key, label]) => this.loadService(key, label)));
  }

  async loadService(key, label) {
    const slot = this.querySelector(`[data-service="${key}"]`);
    const answer = await call(`/admin/${key}/dead-letters`);
    if (!answer.ok) {
      render(slot, isDown(answer) || answer.status === 404 ? unavailable(label) : html`<p role="alert">${problemText(answer, `${label}'s dead letters could not be read`)}</p>`);
      return;
    }
    const items = answer.data.items;
    render(slot, items.length === 0 ? html`<p>No dead letters.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="${label} dead letters">
        <table>
          <caption>${label}: ${items.length} dead letter${items.length === 1 ? '' : 's'}</caption>
          <thead><tr><th scope="col">Event</th><th scope="col">Subject</th><th scope="col">From</th><th scope="col">Consumer</th><th scope="col" class="num">Attempts</th><th scope="col">Error</th><th scope="col">Since</th><th scope="col">Action</th></tr></thead>
          <tbody>
            ${items.map((d) => html`<tr>
              <th scope="row"><span class="mono" title="${d.event.id}">${d.event.type}</span> <span class="hint">${short(d.event.id)}</span></th>
              <td class="mono">${d.event.subject}</td>
              <td>${d.event.source}${d.position != null ? ` #${d.position}` : ''}</td>
              <td>${d.consumer}</td>
              <td class="num">${d.attempts}</td>
              <td class="admin-error">${d.error}</td>
              <td>${when(d.created_at)}</td>
              <td><button type="button" data-action="replay" data-service="${key}" data-label="${label}" data-id="${d.event.id}" data-type="${d.event.type}" aria-label="Replay ${d.event.type} ${d.event.id}">Replay</button></td>
            </tr>`)}
          </tbody>
        </table>
      </div>`);
  }

  async onAction(action, target) {
    if (action !== 'replay') return;
    const { service, label, id, type } = target.dataset;
    if (!(await confirmAction(`Replay ${type} ${short(id)} in ${label}? Its handler runs again.`, 'Replay event'))) return;
    target.disabled = true;
    const answer = await call(`/admin/${service}/dead-letters/${encodeURIComponent(id)}/replay`, { method: 'POST' });
    if (answer.ok) {
      announce(this, `${type} ${short(id)} replayed in ${label} and removed from the dead letters.`);
      await this.loadService(service, label);
    } else {
      target.disabled = false;
      announce(this, isDown(answer) ? downText(answer, label) : problemText(answer, `${type} ${short(id)} could not be replayed`), 'bad');
    }
  }
}

customElements.define('admin-dead-letters', AdminDeadLetters);
