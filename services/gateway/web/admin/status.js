// Status: each service's replicas, health, breaker and figures (the gateway's `GET /status`), and
// each micro frontend's version (its `/ui/<name>/manifest.json`).
import { api } from 'agora/kit';
import { Page, html, render, frame, unavailable, isDown, problemText, words } from './lib.js';

const FRONTENDS = ['shell', 'catalog', 'cart', 'account', 'orders', 'admin'];

/** A value as text: numbers rounded, booleans as yes/no, objects as key=value pairs. */
function show(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (Array.isArray(value)) return value.map(show).join(', ');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${words(k)} ${show(v)}`).join('; ');
  return words(value);
}

/** `{services: [...]}` or `{services: {name: {...}}}` → a list of services with a name. */
function servicesOf(data) {
  const services = data && (data.services ?? data);
  if (Array.isArray(services)) return services;
  if (services && typeof services === 'object') {
    return Object.entries(services).map(([name, s]) => ({ name, ...s }));
  }
  return [];
}

function healthClass(value) {
  const text = String(value).toLowerCase();
  if (value === true || ['up', 'healthy', 'ok', 'closed', 'ready'].includes(text)) return 'ok';
  if (value === false || ['down', 'unhealthy', 'open', 'failed'].includes(text)) return 'bad';
  return 'warn';
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
    const services = servicesOf(answer.data);
    if (services.length === 0) {
      render(slot, html`<p>The gateway reported no services.</p>`);
      return;
    }
    const replicaRows = services.flatMap((s) => (s.replicas || []).map((r) => ({ service: s, replica: r })));
    // The per-service figures: every field that is not the name, the replicas or the breaker.
    const figures = (s) => Object.entries(s).filter(([k]) => !['name', 'service', 'replicas', 'breaker'].includes(k));
    render(slot, html`
      <div class="table-scroll" tabindex="0" role="region" aria-label="Replicas">
        <table>
          <caption>Replicas of each service, as the gateway sees them</caption>
          <thead><tr><th scope="col">Service</th><th scope="col">Replica</th><th scope="col">Health</th><th scope="col">Breaker</th><th scope="col">Details</th></tr></thead>
          <tbody>
            ${replicaRows.map(({ service, replica }) => {
              const r = typeof replica === 'string' ? { url: replica } : replica;
              const health = r.healthy ?? r.health ?? r.status;
              const breaker = r.breaker ?? service.breaker;
              const rest = Object.entries(r).filter(([k]) => !['url', 'address', 'healthy', 'health', 'status', 'breaker'].includes(k));
              return html`<tr>
                <th scope="row">${service.name ?? service.service}</th>
                <td class="mono">${r.url ?? r.address ?? ''}</td>
                <td><span class="badge health-${healthClass(health)}">${health === true ? 'healthy' : health === false ? 'unhealthy' : show(health)}</span></td>
                <td><span class="badge health-${healthClass(typeof breaker === 'object' && breaker ? breaker.state : breaker)}">${show(breaker)}</span></td>
                <td>${rest.map(([k, v]) => `${words(k)}: ${show(v)}`).join('; ')}</td>
              </tr>`;
            })}
          </tbody>
        </table>
      </div>
      <div class="table-scroll" tabindex="0" role="region" aria-label="Figures">
        <table>
          <caption>Figures of each service</caption>
          <thead><tr><th scope="col">Service</th><th scope="col">Figures</th></tr></thead>
          <tbody>
            ${services.map((s) => html`<tr>
              <th scope="row">${s.name ?? s.service}</th>
              <td>${figures(s).length ? html`<dl class="admin-figures">${figures(s).map(([k, v]) => html`<div><dt>${words(k)}</dt><dd>${show(v)}</dd></div>`)}</dl>` : '—'}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>`);
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
      <div class="table-scroll" tabindex="0" role="region" aria-label="Micro frontends">
        <table>
          <caption>Micro frontends and the version each serves</caption>
          <thead><tr><th scope="col">Micro frontend</th><th scope="col">Version</th></tr></thead>
          <tbody>
            ${answers.map((a) => html`<tr><th scope="row">${a.name}</th><td>${a.error ? html`<span class="badge health-bad">${a.error}</span>` : a.version}</td></tr>`)}
          </tbody>
        </table>
      </div>`);
  }

  onAction(action) {
    if (action === 'refresh') this.load();
  }
}

customElements.define('admin-status', AdminStatus);
