// Status: each service's replicas, health, breaker and figures (the gateway's `GET /status`), and
// each micro frontend's version (its `/ui/<name>/manifest.json`).
import { api } from 'agora/kit';
import { Page, html, render, frame, unavailable, isDown, problemText } from './lib.js';

const FRONTENDS = ['shell', 'catalog', 'cart', 'account', 'orders', 'admin'];

/** A figure, or a dash when the replica does not publish it. */
function figure(value, unit = '') {
  return value === null || value === undefined ? '—' : `${value}${unit}`;
}

class AdminStatus extends Page {
  async load() {
    render(this, frame('Status', html`
      <p><button type="button" data-action="refresh">Refresh status</button></p>
      <h2>Services</h2>
      <div class="admin-services"><p>Loading…</p></div>
      <h2>Micro frontends</h2>
      <div class="admin-frontends"><p>Loading…</p></div>`));
    await Promise.all([this.loadServices(), this.loadFrontends()]);
  }

  async loadServices() {
    const slot = this.querySelector('.admin-services');
    const answer = await api('/status');
    if (!answer.ok) {
      render(slot, isDown(answer) ? unavailable('The status') : html`<p role="alert">${problemText(answer, 'The status could not be read')}</p>`);
      return;
    }
    const services = answer.data.services || [];
    this.gatewayVersion = answer.data.gateway && answer.data.gateway.version;
    render(slot, services.length === 0 ? html`<p>The gateway reported no services.</p>` : html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Services">
        <table>
          <caption>Services as the gateway sees them; figures since each replica started</caption>
          <thead><tr>
            <th scope="col">Service</th><th scope="col">Breaker</th><th scope="col">Replica</th><th scope="col">Health</th>
            <th scope="col" class="num">Requests</th><th scope="col" class="num">5xx</th><th scope="col" class="num">p95 at most</th>
            <th scope="col" class="num">Events unread</th><th scope="col" class="num">Dead letters</th>
          </tr></thead>
          ${services.map((s) => html`<tbody>${(s.replicas.length ? s.replicas : [null]).map((r, i) => {
              const m = (r && r.metrics) || {};
              return html`<tr>
                ${i === 0 ? html`<th scope="rowgroup" rowspan="${Math.max(1, s.replicas.length)}">${s.service}<br><span class="muted">${s.healthy_replicas} of ${s.replicas.length} healthy</span></th>
                <td rowspan="${Math.max(1, s.replicas.length)}"><span class="badge ${s.breaker === 'closed' ? 'badge--ok' : 'badge--bad'}">${s.breaker}</span></td>` : ''}
                ${r ? html`
                <td class="mono nowrap">${r.url}</td>
                <td><span class="badge ${r.healthy ? 'badge--ok' : 'badge--bad'}">${r.healthy ? 'healthy' : 'unhealthy'}</span></td>
                ${r.metrics ? html`
                <td class="num">${figure(m.requests)}</td>
                <td class="num">${figure(m.server_errors)}</td>
                <td class="num">${figure(m.p95_ms_at_most, ' ms')}</td>
                <td class="num">${figure(m.events_unread)}</td>
                <td class="num">${m.dead_letters ? html`<a href="/admin/dead-letters">${m.dead_letters}</a>` : figure(m.dead_letters)}</td>`
                : html`<td colspan="5">Figures not read: ${r.metrics_error || 'unknown'}</td>`}`
                : html`<td colspan="7">No replicas</td>`}
              </tr>`;
            })}</tbody>`)}
        </table>
      </div>
      ${this.gatewayVersion ? html`<p>Gateway version ${this.gatewayVersion}.</p>` : ''}`);
  }

  async loadFrontends() {
    const slot = this.querySelector('.admin-frontends');
    const answers = await Promise.all(FRONTENDS.map(async (name) => {
      try {
        const response = await fetch(`/ui/${name}/manifest.json`, { cache: 'no-cache' });
        if (!response.ok) return { name, error: `unavailable (HTTP ${response.status})` };
        const manifest = await response.json();
        return { name, version: manifest.version };
      } catch {
        return { name, error: 'unavailable right now' };
      }
    }));
    render(slot, html`
      <div class="table-wrap" tabindex="0" role="region" aria-label="Micro frontends">
        <table>
          <caption>Micro frontends and the version each serves</caption>
          <thead><tr><th scope="col">Micro frontend</th><th scope="col">Served at</th><th scope="col">Version</th></tr></thead>
          <tbody>
            ${answers.map((a) => html`<tr>
              <th scope="row">${a.name}</th>
              <td class="mono">/ui/${a.name}/</td>
              <td>${a.error ? html`<span class="badge badge--bad">${a.error}</span>` : a.version}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>`);
  }

  onAction(action) {
    if (action === 'refresh') this.load();
  }
}

customElements.define('admin-status', AdminStatus);
