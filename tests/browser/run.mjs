#!/usr/bin/env node
// Runs the browser suite. With AGORA_URL and AGORA_DATA set it uses that platform; otherwise it
// starts `agora up` (the debug build in $CARGO_TARGET_DIR, built beforehand) on free ports with a
// fresh data directory and stops it with Ctrl-C's signal at the end, whatever happened.
// Arguments go to `playwright test` (e.g. a spec file, or `-g journey`). Ends with the plain line
// `browser: N passed, N failed`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' };
let platform = null;

const portFree = (port) => new Promise((resolve) => {
  const s = createServer();
  s.once('error', () => resolve(false));
  s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
});

async function freeBase() {
  for (let i = 0; i < 200; i += 1) {
    const base = 20000 + Math.floor(Math.random() * 19000);
    let ok = true;
    for (let k = 0; k < 8 && ok; k += 1) ok = await portFree(base + k);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

async function startPlatform() {
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'agora-ci-target');
  const bin = join(target, 'debug', 'agora');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build -p agora first`);
  const data = mkdtempSync(join(tmpdir(), 'agora-browser-'));
  const base = await freeBase();
  const child = spawn(bin, ['up', '--port', String(base), '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  platform = { child, data, log: () => log };
  const end = Date.now() + 240_000;
  while (!log.includes('Press Ctrl-C')) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`agora up did not come up:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  env.AGORA_URL = `http://127.0.0.1:${base}`;
  env.AGORA_DATA = data;
  console.log(`platform: ${env.AGORA_URL} (data ${data})`);
}

async function stopPlatform() {
  if (!platform || platform.child.exitCode !== null) return;
  const { child } = platform;
  child.kill('SIGINT');
  const gone = await Promise.race([
    new Promise((r) => child.once('exit', () => r(true))),
    new Promise((r) => setTimeout(() => r(false), 30_000)),
  ]);
  if (!gone) child.kill('SIGKILL');
  // What `agora up` said (restarts included), kept beside the test results; without the line
  // that shows the generated admin password.
  mkdirSync(join(here, 'test-results'), { recursive: true });
  const said = platform.log().split('\n').filter((l) => !/admin login|password/i.test(l)).join('\n');
  writeFileSync(join(here, 'test-results', 'agora-up.log'), said);
  rmSync(platform.data, { recursive: true, force: true });
}

function runPlaywright(args) {
  const report = join(here, 'test-results', 'report.json');
  rmSync(report, { force: true });
  return new Promise((resolve) => {
    const p = spawn(join(here, 'node_modules', '.bin', 'playwright'), ['test', '--reporter=list,json', ...args], {
      cwd: here, stdio: 'inherit', env: { ...env, PLAYWRIGHT_JSON_OUTPUT_NAME: report },
    });
    p.on('exit', (code, signal) => {
      let stats = null;
      try { stats = JSON.parse(readFileSync(report, 'utf8')).stats; } catch { /* no report: crashed */ }
      resolve({ code: code ?? (signal ? 1 : 0), stats });
    });
  });
}

let code = 1;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { stopPlatform().finally(() => process.exit(130)); });
}
try {
  if (!env.AGORA_URL) await startPlatform();
  // Playwright runs in this directory: a data directory given relative to the caller's.
  else if (env.AGORA_DATA) env.AGORA_DATA = resolve(env.AGORA_DATA);
  const { code: c, stats } = await runPlaywright(process.argv.slice(2));
  code = c;
  const passed = stats ? stats.expected + stats.flaky : 0;
  const failed = stats ? stats.unexpected : 1;
  const skipped = stats ? stats.skipped : 0;
  console.log(`browser: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (failed > 0 && code === 0) code = 1;
} catch (e) {
  console.error(String(e.stack || e));
} finally {
  await stopPlatform();
}
process.exit(code);
