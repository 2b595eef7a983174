// What the specs know about the running platform: its gateway URL, the demo logins from its data
// directory, and API calls made with Playwright's `request` (bearer tokens, never cookies), used to
// check what a page did.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const baseURL = process.env.AGORA_URL;
export const dataDir = process.env.AGORA_DATA;
if (!baseURL || !dataDir) {
  throw new Error('AGORA_URL and AGORA_DATA must be set (run the suite with `node run.mjs`)');
}
/** The gateway's port: `agora up --port P` puts the gateway on P and service k on P+k. */
export const basePort = Number(new URL(baseURL).port);
export const servicePort = {
  users: basePort + 1, products: basePort + 2, inventory: basePort + 3, orders: basePort + 4,
  payments: basePort + 5, carts: basePort + 7,
};

function credentials(file) {
  const text = readFileSync(join(dataDir, file), 'utf8');
  const field = (name) => text.split('\n').find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim();
  return { login: field('username') ?? field('email'), password: field('password') };
}
/** The demo admin (`admin-credentials`: email and password). */
export const admin = () => credentials('admin-credentials');
/** The demo shopper (`demo-credentials`). */
export const demo = () => credentials('demo-credentials');

/** A new shopper's registration data: unique per call, a password the users service accepts. */
export function newShopper() {
  const id = randomUUID().slice(0, 8);
  return { username: `shopper${id}`, email: `shopper${id}@example.test`, password: `Pw-${randomUUID()}` };
}

/** Logs in through the API and answers the access token. */
export async function token(request, { login, password }) {
  const r = await request.post('/api/auth/login', { data: { login, password } });
  if (!r.ok()) throw new Error(`login as ${login}: ${r.status()}`);
  return (await r.json()).access_token;
}

/** A JSON call on the gateway's API as the holder of `bearer`; answers {status, body}. */
export async function call(request, bearer, method, path, data) {
  const r = await request.fetch(`/api${path}`, {
    method,
    data,
    headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
  });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  return { status: r.status(), body };
}

/** Every order of the holder of `bearer` (all pages). */
export async function orders(request, bearer) {
  const all = [];
  let cursor = '';
  for (let i = 0; i < 50; i += 1) {
    const r = await call(request, bearer, 'GET', `/orders?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /orders: ${r.status}`);
    all.push(...r.body.items);
    cursor = r.body.next_cursor ?? r.body.next ?? '';
    if (!cursor) break;
  }
  return all;
}

/** Stock of one SKU (public). */
export async function stock(request, sku) {
  const r = await call(request, null, 'GET', `/stock/${encodeURIComponent(sku)}`);
  if (r.status !== 200) throw new Error(`GET /stock/${sku}: ${r.status}`);
  return r.body;
}

/** Polls `probe` until it answers a truthy value (or throws after `ms`). */
export async function eventually(probe, ms = 15_000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not reached in ${ms} ms (last: ${JSON.stringify(last)})`);
}
