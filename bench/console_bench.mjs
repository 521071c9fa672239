// bench/console_bench.sh's measuring half: the console's alert queue in
// chromium against the same API call alone (see the .sh for what and why).
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    origin: { type: 'string' }, ca: { type: 'string' }, 'token-file': { type: 'string' },
    runs: { type: 'string', default: '30' }, alerts: { type: 'string', default: '?' }, work: { type: 'string' },
  },
});
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { chromium } = createRequire(path.join(ROOT, 'console/package.json'))('playwright-core');
const token = fs.readFileSync(opt['token-file'], 'utf8').trim();
const runs = Number(opt.runs);
const PAGE = '/v1/alerts?limit=500';

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms`;

// Baseline: the API call alone, keep-alive (as a script or a SIEM would).
const agent = new https.Agent({ ca: fs.readFileSync(opt.ca), keepAlive: true, maxSockets: 1 });
const get = (p) => new Promise((resolve, reject) => {
  const t0 = performance.now();
  https.get(`${opt.origin}${p}`, { agent, headers: { Authorization: `Bearer ${token}` } }, (res) => {
    let n = 0;
    res.on('data', (c) => { n += c.length; });
    res.on('end', () => (res.statusCode === 200 ? resolve({ ms: performance.now() - t0, bytes: n })
      : reject(new Error(`HTTP ${res.statusCode}`))));
  }).on('error', reject);
});
await get(PAGE);  // warm: the store's page cache, the TLS session
const api = [];
let bytes = 0;
for (let i = 0; i < runs; i += 1) { const r = await get(PAGE); api.push(r.ms); bytes = r.bytes; }
// The queue filtered as an analyst narrows it (the store scans for it).
const FILTERED = '/v1/alerts?limit=500&rule=location.moving&state=pending_approval';
await get(FILTERED);
const filtered = [];
for (let i = 0; i < runs; i += 1) filtered.push((await get(FILTERED)).ms);

const userData = fs.mkdtempSync(path.join(opt.work || os.tmpdir(), 'chromium-'));
const context = await chromium.launchPersistentContext(userData, {
  executablePath: '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 900 },
});
const page = context.pages()[0] || await context.newPage();
await page.goto(`${opt.origin}/console/`);
await page.fill('#token', token);
await page.click('button[type=submit]');
await page.waitForSelector('tr[data-alert]');
const load = [];
const inBrowser = [];
for (let i = 0; i < runs + 1; i += 1) {
  const t0 = performance.now();
  await page.reload();  // sessionStorage survives a reload: still signed in
  await page.waitForFunction(() => document.querySelectorAll('tr[data-alert]').length >= 500);
  const ms = performance.now() - t0;
  const call = await page.evaluate((p) => {
    const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith(p));
    return e ? e.duration : null;
  }, PAGE);
  if (i === 0) continue;  // warm-up
  load.push(ms);
  if (call !== null) inBrowser.push(call);
}
await context.close();

console.log(`console_bench: ${opt.alerts} alerts in the store, ${runs} runs each, page of 500 alerts (${(bytes / 1024).toFixed(0)} KiB)`);
console.log(`  baseline  GET ${PAGE} alone (keep-alive):      ${fmt(api)}`);
console.log(`  filtered  GET ${FILTERED} alone:  ${fmt(filtered)}`);
console.log(`  console   the same call inside the console:          ${fmt(inBrowser)}   ratio p95 ${(pct(inBrowser, 95) / pct(api, 95)).toFixed(2)}`);
console.log(`  console   queue on screen (reload -> 500 rows):      ${fmt(load)}   ratio p95 ${(pct(load, 95) / pct(api, 95)).toFixed(2)}`);
