// femtoguard console (issue 18; docs/console.md). Preact + htm, no build
// step: these ES modules are served by `femtoguard serve` at /console/ from
// the binary itself. Everything shown comes from the bearer-token API on the
// same origin; the token is kept in sessionStorage (gone when the tab
// closes) and sent only as an Authorization header, never in a URL.
import { h, render } from './vendor/preact.mjs';
import { useState, useEffect, useRef, useCallback } from './vendor/hooks.mjs';
import htm from './vendor/htm.mjs';

const html = htm.bind(h);
const TOKEN_KEY = 'femtoguard.token';
const POLL_MS = 1500;

// ---- API ----

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const opts = { method, headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (_) { /* a body that is not JSON */ }
  if (r.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    window.dispatchEvent(new Event('femtoguard-signed-out'));
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  return data;
}

function query(params) {
  const q = Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return q ? `?${q}` : '';
}

// ---- formatting ----

// Coordinates to 5 decimals (about a metre), never 37.513648986816406.
const deg = (v) => (typeof v === 'number' ? v.toFixed(5) : '?');
const latlon = (p) => `${deg(p.lat)}, ${deg(p.lon)}`;
function metres(m) {
  if (typeof m !== 'number') return '?';
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}
function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (isNaN(d)) return ts;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
function ago(ts) {
  if (!ts) return 'never';
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (s < 0) return when(ts);
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
const shortFp = (fp) => (fp ? `${String(fp).replace(/^sha256:/, '').slice(0, 12)}…` : '?');
const list = (xs) => (xs && xs.length ? xs.join(', ') : 'nothing');

// ---- alerts in words ----

// One sentence or two: what was seen, why it matters. Built from the
// evidence each rule publishes (docs/rules.md).
function explain(a) {
  const e = a.evidence || {};
  const d = a.device || 'an unidentified femtocell';
  switch (a.rule) {
    case 'location.moving': {
      const n = (e.positions || []).length;
      return `${d} reported ${n} positions (${e.source || 'gnss'}) that move: the last jump was ` +
        `${metres(e.last_jump_m)} at ${Math.round(e.last_jump_kmh || 0)} km/h. A femtocell stays ` +
        'at its registered site; one on the move is likely counterfeit equipment in a vehicle.';
    }
    case 'location.mismatch':
      return `${d} reported a position ${metres(e.distance_m)} from its registered site ` +
        `(${e.site ? latlon(e.site) : '?'}; allowed ${metres(e.allowed_m)}), at ${latlon(e)} ` +
        `(±${metres(e.acc_m)}).`;
    case 'cert.shared':
      return `The certificate ${shortFp(e.cert_fp)} of ${d} is also in use by ${e.other_device || '?'} ` +
        `(first seen ${when(e.other_first_seen)}), this time from ${e.src_ip || '?'}: one credential, ` +
        'two devices — a cloned certificate.';
    case 'cert.clone':
      return `${d} presented a certificate already bound to another key or device: a clone.`;
    case 'cert.legacy':
      return `${d} used the fleet's shared legacy credential outside its one-time migration.`;
    case 'device.unknown':
      return `A femtocell that is not in the registry (${d}) opened a session ${e.session || ''} ` +
        `from ${e.src_ip || '?'} to ${e.endpoint || '?'} with certificate ${shortFp(e.cert_fp)}.`;
    case 'device.inactive':
      return `${d} is ${e.status || 'not active'} in the registry, yet a session came up from ` +
        `${e.src_ip || '?'} with its certificate ${shortFp(e.cert_fp)}.`;
    case 'endpoint.retired':
      return `${d} still connects to a retired endpoint (${e.endpoint || '?'}): it missed the rotation, ` +
        'or it is running from an old, copied configuration.';
    case 'ue.capture':
      return `${e.subscribers || 'Several'} subscribers who are not members of ${d} attached to it within ` +
        `${Math.round((e.window_s || 0) / 60)} min (device ${e.device_status || 'status unknown'}): ` +
        'a femtocell pulling in passers-by, as an IMSI catcher does.';
    case 'sms.intercept':
      return `An SMS ${e.class === 'otp' ? 'one-time code' : 'message'} from ${e.sender || '?'} was delivered ` +
        `through ${d}, which is suspect (${e.suspect_rule || e.reason || '?'})` +
        `${e.blocked ? '; it was held back' : ''}.`;
    case 'payment.risk': {
      const p = e.payment || {};
      return `A payment of ${p.amount ?? '?'} ${p.currency || ''} to ${p.merchant || '?'} (${p.channel || '?'}) ` +
        `by a subscriber last served by ${e.last_femto || '?'} (${when(e.last_served)}) was answered ` +
        `${e.decision || '?'}: ${list(e.reasons)}.`;
    }
    case 'cell.unregistered':
      return `${d} reported a macro cell that is not in the cell database: a fake cell nearby, or a stale database.`;
    default:
      return `${a.rule} on ${d}.`;
  }
}

// The evidence as key: value, coordinates rounded, nested objects flattened.
function evidenceLines(e, prefix = '') {
  const out = [];
  for (const [k, v] of Object.entries(e || {})) {
    if (k === 'positions') continue;
    const key = prefix + k;
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...evidenceLines(v, `${key}.`));
    else if (typeof v === 'number' && /(^|\.)(lat|lon)$/.test(key)) out.push([key, deg(v)]);
    else out.push([key, Array.isArray(v) ? v.join(', ') : String(v)]);
  }
  return out;
}

// ---- sign-in and the frame ----

function SignIn({ onSignedIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const submit = async (ev) => {
    ev.preventDefault();
    setError('');
    sessionStorage.setItem(TOKEN_KEY, token.trim());
    try {
      const me = await api('GET', '/v1/whoami');
      if (!['viewer', 'operator', 'admin'].includes(me.role)) {
        sessionStorage.removeItem(TOKEN_KEY);
        setError(`a ${me.role} token cannot use the console (viewer, operator or admin)`);
        return;
      }
      setToken('');
      onSignedIn(me);
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      setError(e.status === 401 ? 'unknown or revoked token' : e.message);
    }
  };
  return html`<div class="panel signin">
    <h1>femtoguard console</h1>
    <form onSubmit=${submit}>
      <label for="token">API token (femtoguard token create --role viewer|operator|admin)</label>
      <input id="token" name="token" type="password" autocomplete="off" value=${token}
        onInput=${(e) => setToken(e.target.value)} placeholder="fgt_…" />
      <button class="primary" type="submit" disabled=${!token.trim()}>Sign in</button>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </div>`;
}

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/alerts');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/alerts');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const PAGES = [
  ['#/alerts', 'Alerts'], ['#/fleet', 'Fleet'], ['#/endpoints', 'Endpoints'],
  ['#/enrolment', 'Enrolment'], ['#/audit', 'Audit log'],
];

function App() {
  const [me, setMe] = useState(null);
  const [checking, setChecking] = useState(!!sessionStorage.getItem(TOKEN_KEY));
  const hash = useHash();
  useEffect(() => {
    const out = () => setMe(null);
    window.addEventListener('femtoguard-signed-out', out);
    if (sessionStorage.getItem(TOKEN_KEY)) {
      api('GET', '/v1/whoami').then(setMe).catch(() => {}).finally(() => setChecking(false));
    }
    return () => window.removeEventListener('femtoguard-signed-out', out);
  }, []);
  if (checking) return html`<main class="muted">…</main>`;
  if (!me) return html`<${SignIn} onSignedIn=${setMe} />`;
  const signOut = () => { sessionStorage.removeItem(TOKEN_KEY); setMe(null); };
  const canAct = me.role === 'operator' || me.role === 'admin';
  let page;
  if (hash.startsWith('#/device/')) page = html`<${DevicePage} id=${decodeURIComponent(hash.slice(9))} canAct=${canAct} />`;
  else if (hash === '#/fleet') page = html`<${Fleet} canAct=${canAct} />`;
  else if (hash === '#/endpoints') page = html`<${Endpoints} isAdmin=${me.role === 'admin'} />`;
  else if (hash === '#/enrolment') page = html`<${Enrolment} canAct=${canAct} />`;
  else if (hash === '#/audit') page = html`<${Audit} />`;
  else page = html`<${Alerts} canAct=${canAct} />`;
  return html`
    <header>
      <span class="brand">femtoguard</span>
      <nav>${PAGES.map(([href, name]) => html`<a href=${href} class=${hash === href ? 'active' : ''}>${name}</a>`)}</nav>
      <span class="who">signed in as <b data-role=${me.role}>${me.role}</b> (${me.token})
        <button onClick=${signOut}>Sign out</button></span>
    </header>
    <main>${page}</main>`;
}

// ---- alert queue ----

const STATES = ['open', 'pending_approval', 'acted', 'dismissed'];
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const RULES = ['device.unknown', 'device.inactive', 'cert.shared', 'cert.clone', 'cert.legacy',
  'endpoint.retired', 'location.mismatch', 'location.moving', 'ue.capture', 'sms.intercept',
  'payment.risk', 'cell.unregistered'];

function Select({ label, value, options, onChange, name }) {
  return html`<label>${label}<select name=${name} value=${value} onChange=${(e) => onChange(e.target.value)}>
    <option value="">any</option>${options.map((o) => html`<option value=${o}>${o}</option>`)}
  </select></label>`;
}

function Alerts({ canAct }) {
  const [filter, setFilter] = useState({ rule: '', severity: '', state: '', device: '' });
  const [alerts, setAlerts] = useState([]);
  const [fresh, setFresh] = useState(new Set());
  const [selected, setSelected] = useState(new Set());
  const [open, setOpen] = useState(new Set());
  const [message, setMessage] = useState(null);
  const [live, setLive] = useState(false);
  const cursor = useRef(null);
  // Bumped on each filter change: an answer to an older filter's request,
  // arriving late, is dropped instead of replacing the new filter's rows.
  const generation = useRef(0);

  const load = useCallback(async () => {
    const g = generation.current;
    const data = await api('GET', `/v1/alerts${query({ ...filter, limit: 500 })}`);
    if (g === generation.current) setAlerts(data.alerts);
    return data.alerts;
  }, [filter]);

  // The newest page, then the cursor: every alert inserted after it arrives
  // with the next poll (GET /v1/alerts?since=), filtered by the server.
  useEffect(() => {
    let stop = false;
    let timer = null;
    generation.current += 1;
    cursor.current = null;
    setSelected(new Set());
    setAlerts([]);  // never show the last filter's rows under the new one
    const tick = async () => {
      try {
        if (cursor.current === null) {
          const head = await api('GET', '/v1/alerts?limit=1');
          if (stop) return;  // the filter changed meanwhile: the new tick owns the cursor
          cursor.current = head.alerts.length ? String(head.alerts[0].seq) : '0';
          await load();
        } else {
          const data = await api('GET', `/v1/alerts${query({ ...filter, since: cursor.current, limit: 1000 })}`);
          if (stop) return;
          cursor.current = data.next;
          if (data.alerts.length) {
            const ids = new Set(data.alerts.map((a) => a.id));
            setFresh(ids);
            setAlerts((old) => [...data.alerts.slice().reverse(), ...old.filter((a) => !ids.has(a.id))].slice(0, 2000));
          }
        }
        setLive(true);
      } catch (e) {
        setLive(false);
        if (e.status !== 401) setMessage({ error: e.message });
      }
      if (!stop) timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return () => { stop = true; clearTimeout(timer); };
  }, [filter, load]);

  const set = (k) => (v) => setFilter((f) => ({ ...f, [k]: v }));
  const toggle = (id) => setSelected((s) => { const n = new Set(s); n.has(id) ? n.delete(id) : n.add(id); return n; });
  const toggleOpen = (id) => setOpen((s) => { const n = new Set(s); n.has(id) ? n.delete(id) : n.add(id); return n; });
  const allSelected = alerts.length > 0 && alerts.every((a) => selected.has(a.id));

  // verb: approve | dismiss | false_positive; on each id (the API's per-alert route).
  const act = async (ids, verb) => {
    setMessage(null);
    let ok = 0;
    const errors = [];
    for (const id of ids) {
      const path = `/v1/alerts/${encodeURIComponent(id)}/${verb === 'approve' ? 'approve' : 'dismiss'}`;
      const body = verb === 'false_positive' ? { false_positive: true, reason: 'console: false positive' }
        : { reason: `console: ${verb}` };
      try { await api('POST', path, body); ok += 1; } catch (e) { errors.push(`${id}: ${e.message}`); }
    }
    setSelected(new Set());
    await load().catch(() => {});
    const words = { approve: 'approved', dismiss: 'dismissed', false_positive: 'dismissed as false positive (actions undone)' };
    setMessage(errors.length ? { error: `${ok} ${words[verb]}; ${errors.join('; ')}` } : { ok: `${ok} ${words[verb]}` });
  };

  return html`
    <h1>Alert queue <span class=${`live ${live ? 'on' : ''}`}>${live ? 'live' : 'offline'}</span></h1>
    <div class="filters">
      <${Select} name="rule" label="rule" value=${filter.rule} options=${RULES} onChange=${set('rule')} />
      <${Select} name="severity" label="severity" value=${filter.severity} options=${SEVERITIES} onChange=${set('severity')} />
      <${Select} name="state" label="state" value=${filter.state} options=${STATES} onChange=${set('state')} />
      <label>device<input name="device" value=${filter.device} placeholder="FG-…"
        onChange=${(e) => set('device')(e.target.value.trim())} /></label>
    </div>
    <div class="bulk">
      <span class="muted">${selected.size} selected</span>
      <button class="primary" data-bulk="approve" disabled=${!canAct || !selected.size}
        title=${canAct ? '' : 'your role may not change alerts'}
        onClick=${() => act([...selected], 'approve')}>Approve</button>
      <button data-bulk="dismiss" disabled=${!canAct || !selected.size} onClick=${() => act([...selected], 'dismiss')}>Dismiss</button>
      <button class="danger" data-bulk="false_positive" disabled=${!canAct || !selected.size}
        onClick=${() => act([...selected], 'false_positive')}>Dismiss as false positive</button>
      ${!canAct && html`<span class="muted">read-only: your role may look, not act</span>`}
    </div>
    ${message && html`<p class=${message.error ? 'error' : 'ok'} role="status">${message.error || message.ok}</p>`}
    <table class="alerts">
      <thead><tr>
        <th><input type="checkbox" aria-label="select all" checked=${allSelected} disabled=${!canAct}
          onChange=${() => setSelected(allSelected ? new Set() : new Set(alerts.map((a) => a.id)))} /></th>
        <th>time</th><th>rule</th><th>severity</th><th>device</th><th>state</th><th>what happened</th><th>actions</th><th></th>
      </tr></thead>
      <tbody>
        ${alerts.map((a) => html`
          <tr key=${a.id} data-alert=${a.id} data-rule=${a.rule} data-device=${a.device || ''} data-state=${a.state} class=${fresh.has(a.id) ? 'new' : ''}>
            <td><input type="checkbox" aria-label=${`select ${a.id}`} disabled=${!canAct}
              checked=${selected.has(a.id)} onChange=${() => toggle(a.id)} /></td>
            <td class="nowrap">${when(a.ts)}</td>
            <td class="nowrap">${a.rule}</td>
            <td><span class=${`sev ${a.severity}`}>${a.severity}</span></td>
            <td class="nowrap">${a.device ? html`<a href=${`#/device/${encodeURIComponent(a.device)}`}>${a.device}</a>` : '—'}</td>
            <td><span class=${`state ${a.state}`}>${a.state.replace('_', ' ')}</span>
              ${a.false_positive && html`<div class="muted">false positive</div>`}</td>
            <td class="explain">${explain(a)}
              ${open.has(a.id) && html`<div class="evidence">${evidenceLines(a.evidence).map(([k, v]) =>
                html`<div>${k}: <code>${v}</code></div>`)}
                ${(a.subjects || []).length > 0 && html`<div>subjects: <code>${a.subjects.join(', ')}</code></div>`}
                <div>alert id: <code>${a.id}</code></div></div>`}
              <div><button class="link" onClick=${() => toggleOpen(a.id)}>${open.has(a.id) ? 'hide evidence' : 'evidence'}</button></div></td>
            <td><div>done: ${list(a.actions_done)}</div>
              ${a.actions_pending && a.actions_pending.length > 0 && html`<div>awaiting approval: <b>${a.actions_pending.join(', ')}</b></div>`}
              ${(a.actions_skipped || []).length > 0 && html`<div class="muted" title=${a.actions_skipped.map((s) => `${s.action}: ${s.reason}`).join('\n')}>
                skipped: ${a.actions_skipped.map((s) => s.action).join(', ')}</div>`}
              ${open.has(a.id) && (a.actions_skipped || []).map((s) => html`<div class="muted">${s.action}: ${s.reason}</div>`)}</td>
            <td>
              ${a.state === 'pending_approval' && html`<button class="primary" data-action="approve"
                disabled=${!canAct} onClick=${() => act([a.id], 'approve')}>Approve</button>`}
              ${a.state !== 'dismissed' && html`<button data-action="dismiss" disabled=${!canAct}
                onClick=${() => act([a.id], 'dismiss')}>Dismiss</button>`}
              ${!a.false_positive && html`<button class="danger" data-action="false_positive" disabled=${!canAct}
                onClick=${() => act([a.id], 'false_positive')}>False positive</button>`}
            </td>
          </tr>`)}
      </tbody>
    </table>
    ${alerts.length === 0 && html`<p class="muted">No alerts match.</p>`}`;
}

// ---- fleet ----

function Fleet({ canAct }) {
  const [filter, setFilter] = useState({ status: '', q: '', dormant: '', expiring_days: '' });
  const [data, setData] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [message, setMessage] = useState(null);
  const [target, setTarget] = useState('suspended');
  const latest = useRef(0);  // only the newest request's answer is shown (see Alerts)
  const load = useCallback(() => {
    const n = ++latest.current;
    return api('GET', `/v1/devices${query({ ...filter, limit: 1000 })}`)
      .then((d) => { if (n === latest.current) setData(d); })
      .catch((e) => setMessage({ error: e.message }));
  }, [filter]);
  useEffect(() => { load(); }, [load]);
  const set = (k) => (v) => setFilter((f) => ({ ...f, [k]: v }));
  const toggle = (id) => setSelected((s) => { const n = new Set(s); n.has(id) ? n.delete(id) : n.add(id); return n; });
  const apply = async () => {
    setMessage(null);
    try {
      const r = await api('POST', '/v1/devices/status', { devices: [...selected], status: target, reason: `console: bulk ${target}` });
      const failed = r.devices.filter((d) => d.error);
      setMessage(failed.length ? { error: `${r.changed} changed; ${failed.map((d) => `${d.id}: ${d.error}`).join('; ')}` }
        : { ok: `${r.changed} devices now ${target}` });
      setSelected(new Set());
      load();
    } catch (e) { setMessage({ error: e.message }); }
  };
  const devices = data ? data.devices : [];
  return html`
    <h1>Fleet</h1>
    <div class="filters">
      <${Select} name="status" label="status" value=${filter.status}
        options=${['provisioned', 'active', 'suspended', 'decommissioned']} onChange=${set('status')} />
      <label>device id contains<input name="q" value=${filter.q} onChange=${(e) => set('q')(e.target.value.trim())} /></label>
      <label>dormant<select name="dormant" value=${filter.dormant} onChange=${(e) => set('dormant')(e.target.value)}>
        <option value="">any</option><option value="1">dormant only</option></select></label>
      <label>certificate expires within<select name="expiring_days" value=${filter.expiring_days}
        onChange=${(e) => set('expiring_days')(e.target.value)}>
        <option value="">any time</option><option value="7">7 days</option><option value="30">30 days</option></select></label>
    </div>
    <div class="bulk">
      <span class="muted">${selected.size} selected</span>
      <select name="target" value=${target} disabled=${!canAct} onChange=${(e) => setTarget(e.target.value)}>
        <option value="suspended">suspend</option><option value="active">reactivate</option>
        <option value="decommissioned">decommission</option></select>
      <button class="primary" data-bulk="status" disabled=${!canAct || !selected.size} onClick=${apply}>Apply to selected</button>
      ${!canAct && html`<span class="muted">read-only: your role may look, not act</span>`}
    </div>
    ${message && html`<p class=${message.error ? 'error' : 'ok'} role="status">${message.error || message.ok}</p>`}
    ${data && html`<p class="muted">${data.matched} devices match${data.matched > devices.length ? `, first ${devices.length} shown` : ''}; dormant = active and not seen for ${data.dormancy_days} days.</p>`}
    <table class="fleet">
      <thead><tr><th></th><th>device</th><th>status</th><th>mode</th><th>last seen</th>
        <th>certificate expires</th><th>site</th></tr></thead>
      <tbody>${devices.map((d) => html`
        <tr key=${d.id} data-device=${d.id}>
          <td><input type="checkbox" aria-label=${`select ${d.id}`} disabled=${!canAct}
            checked=${selected.has(d.id)} onChange=${() => toggle(d.id)} /></td>
          <td><a href=${`#/device/${encodeURIComponent(d.id)}`}>${d.id}</a></td>
          <td><span class=${`status ${d.status}`}>${d.status}</span>${d.dormant && html` <span class="state">dormant</span>`}</td>
          <td>${d.mode}</td>
          <td title=${d.last_seen || ''}>${ago(d.last_seen)}</td>
          <td>${d.certificate ? html`${when(d.certificate.not_after).slice(0, 10)}
            <span class="muted">${d.certificate.status !== 'valid' ? ` (${d.certificate.status})` : ''}</span>` : html`<span class="muted">none</span>`}</td>
          <td>${d.site ? `${latlon(d.site)} ±${metres(d.site.radius_m)}` : '—'}</td>
        </tr>`)}</tbody>
    </table>`;
}

// ---- device page: timeline and map ----

// Reported positions of a device, from its alerts' evidence, oldest first.
function positionsOf(alerts) {
  const seen = new Map();
  for (const a of alerts) {
    const e = a.evidence || {};
    for (const p of e.positions || []) {
      if (typeof p.lat === 'number') seen.set(`${p.from}|${p.lat}|${p.lon}`, { lat: p.lat, lon: p.lon, ts: p.from, acc_m: p.acc_m });
    }
    if (a.rule === 'location.mismatch' && typeof e.lat === 'number') {
      seen.set(`${a.ts}|${e.lat}|${e.lon}`, { lat: e.lat, lon: e.lon, ts: a.ts, acc_m: e.acc_m });
    }
  }
  return [...seen.values()].sort((x, y) => String(x.ts).localeCompare(String(y.ts)));
}

// The registered site and the reported positions on an equirectangular
// projection around them, with the macro cells of the node's cell database
// as landmarks: no tiles, no network beyond the node's API.
function DeviceMap({ site, positions }) {
  const [cells, setCells] = useState([]);
  const pts = [...positions, ...(site ? [site] : [])];
  const lat0 = pts.length ? pts.reduce((s, p) => s + p.lat, 0) / pts.length : 0;
  const lon0 = pts.length ? pts.reduce((s, p) => s + p.lon, 0) / pts.length : 0;
  const kx = 111320 * Math.cos((lat0 * Math.PI) / 180);  // metres per degree of longitude
  const ky = 110540;
  const xs = pts.map((p) => (p.lon - lon0) * kx);
  const ys = pts.map((p) => (p.lat - lat0) * ky);
  const half = Math.max(600, ...xs.map(Math.abs), ...ys.map(Math.abs)) * 1.25;
  useEffect(() => {
    if (!pts.length) return;
    api('GET', `/v1/cells${query({ lat: lat0.toFixed(6), lon: lon0.toFixed(6), radius_m: Math.min(50000, Math.round(half * 1.5)) })}`)
      .then((d) => setCells(d.cells)).catch(() => setCells([]));
  }, [lat0.toFixed(5), lon0.toFixed(5), Math.round(half)]);
  if (!pts.length) return html`<p class="muted">No registered site and no reported position.</p>`;
  const W = 640;
  const s = W / (2 * half);
  const X = (p) => ((p.lon - lon0) * kx + half) * s;
  const Y = (p) => (half - (p.lat - lat0) * ky) * s;
  const track = positions.map((p) => `${X(p).toFixed(1)},${Y(p).toFixed(1)}`).join(' ');
  const scaleM = half > 5000 ? 5000 : half > 2000 ? 2000 : half > 1000 ? 1000 : 500;
  return html`
    <svg class="map" viewBox=${`0 0 ${W} ${W}`} role="img" aria-label="device map" data-positions=${positions.length}>
      ${cells.map((c) => html`<circle class="cell" cx=${X(c)} cy=${Y(c)} r="2"><title>${c.radio} cell PCI ${c.pci} at ${latlon(c)}</title></circle>`)}
      ${site && html`<circle class="site" data-site="1" cx=${X(site)} cy=${Y(site)} r=${Math.max(6, (site.radius_m || 100) * s)}>
        <title>registered site ${latlon(site)} ±${metres(site.radius_m)}</title></circle>
        <text x=${X(site) + 8} y=${Y(site) - 8}>registered site</text>`}
      ${positions.length > 1 && html`<polyline class="track" points=${track} />`}
      ${positions.map((p, i) => html`<circle class="pos" data-pos=${i} cx=${X(p)} cy=${Y(p)} r="4">
        <title>${when(p.ts)}: ${latlon(p)} ±${metres(p.acc_m)}</title></circle>`)}
      ${positions.length > 0 && html`<text x=${X(positions[0]) + 6} y=${Y(positions[0]) + 14}>first ${when(positions[0].ts).slice(11, 16)}</text>
        <text x=${X(positions[positions.length - 1]) + 6} y=${Y(positions[positions.length - 1]) + 14}>last ${when(positions[positions.length - 1].ts).slice(11, 16)}</text>`}
      <line x1="16" y1=${W - 20} x2=${16 + scaleM * s} y2=${W - 20} stroke="#1d232b" stroke-width="2" />
      <text x="16" y=${W - 26}>${metres(scaleM)}</text>
    </svg>
    <p class="legend">Grey dots: macro cells from the node's cell database (${cells.length}). Green: registered site.
      Red: reported positions, joined in time order (${positions.length}).</p>`;
}

function describeEntry(e) {
  switch (e.kind) {
    case 'certificate': return `certificate ${e.serial} ${e.event}${e.reason ? ` (${e.reason})` : ''}`;
    case 'alert': return html`<b>${e.rule}</b> (${e.severity}, ${e.state.replace('_', ' ')}): ${explain(e)}`;
    case 'action': return `${e.action} by ${e.actor}${e.reason ? `: ${e.reason}` : ''}`;
    case 'session': return `session ${e.session || ''}: ${e.decision || '?'} from ${e.src_ip || '?'}${e.reasons && e.reasons.length ? ` (${e.reasons.join(', ')})` : ''}`;
    case 'location': return `registered site ${latlon(e)} ±${metres(e.radius_m)}`;
    default: return JSON.stringify(e);
  }
}

function DevicePage({ id, canAct }) {
  const [timeline, setTimeline] = useState(null);
  const [alerts, setAlerts] = useState([]);
  const [device, setDevice] = useState(null);
  const [error, setError] = useState('');
  const [kind, setKind] = useState('');
  useEffect(() => {
    setError('');
    // Unregistered devices (a counterfeit's made-up id) have no timeline,
    // only alerts.
    api('GET', `/v1/devices/${encodeURIComponent(id)}/timeline`).then(setTimeline)
      .catch((e) => { setTimeline(null); if (e.status !== 404) setError(e.message); });
    api('GET', `/v1/alerts${query({ device: id, limit: 1000 })}`).then((d) => setAlerts(d.alerts)).catch((e) => setError(e.message));
    api('GET', `/v1/devices${query({ q: id, limit: 50 })}`).then((d) => setDevice(d.devices.find((x) => x.id === id) || null))
      .catch(() => {});
  }, [id]);
  const site = device && device.site ? device.site : null;
  const positions = positionsOf(alerts);
  const entries = timeline ? timeline.timeline.slice().reverse() : [];
  const shown = kind ? entries.filter((e) => e.kind === kind) : entries;
  return html`
    <h1>Device ${id} ${device ? html`<span class=${`status ${device.status}`}>${device.status}</span>`
      : html`<span class="muted">not in the registry</span>`}</h1>
    ${error && html`<p class="error">${error}</p>`}
    ${device && html`<div class="panel">mode ${device.mode}; last seen ${ago(device.last_seen)};
      certificate ${device.certificate ? `${device.certificate.serial}, expires ${when(device.certificate.not_after)} (${device.certificate.status})` : 'none'}
      ${device.dormant ? '; dormant' : ''}</div>`}
    <div class="grid2">
      <div>
        <h2>Timeline</h2>
        <div class="filters"><${Select} name="kind" label="show" value=${kind}
          options=${['session', 'certificate', 'location', 'alert', 'action']} onChange=${setKind} /></div>
        ${timeline ? html`<table class="timeline"><thead><tr><th>time</th><th>kind</th><th>what</th></tr></thead>
          <tbody>${shown.map((e) => html`<tr data-kind=${e.kind}><td>${when(e.ts)}</td><td>${e.kind}</td><td>${describeEntry(e)}</td></tr>`)}</tbody></table>`
        : html`<p class="muted">No registry timeline for this id. Its alerts:</p>
          <table class="timeline"><tbody>${alerts.map((a) => html`<tr data-kind="alert"><td>${when(a.ts)}</td><td>${describeEntry({ ...a, kind: 'alert' })}</td></tr>`)}</tbody></table>`}
      </div>
      <div>
        <h2>Map</h2>
        <${DeviceMap} site=${site} positions=${positions} />
        ${!canAct && html`<p class="muted">read-only</p>`}
      </div>
    </div>`;
}

// ---- endpoints ----

function Endpoints({ isAdmin }) {
  const [data, setData] = useState(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [message, setMessage] = useState(null);
  const load = () => api('GET', '/v1/endpoints').then(setData).catch((e) => setMessage({ error: e.message }));
  useEffect(() => { load(); }, []);
  const post = async (path, body, ok) => {
    setMessage(null);
    try { setData(await api('POST', path, body)); setMessage({ ok }); } catch (e) { setMessage({ error: e.message }); }
  };
  const eps = data ? data.endpoints : [];
  const active = eps.filter((e) => e.status === 'active');
  return html`
    <h1>Authentication endpoints</h1>
    <p class="muted">Devices learn these only from the signed device configuration document. Rotation brings
      up the new endpoint and drains the old one; retiring an endpoint makes devices still using it suspect
      (rule endpoint.retired).</p>
    ${message && html`<p class=${message.error ? 'error' : 'ok'} role="status">${message.error || message.ok}</p>`}
    <table><thead><tr><th>endpoint</th><th>status</th><th>since</th><th></th></tr></thead>
      <tbody>${eps.map((e) => html`<tr data-endpoint=${e.address}><td>${e.address}</td>
        <td><span class=${`state ${e.status}`}>${e.status}</span></td><td>${when(e.updated)}</td>
        <td>${e.status === 'draining' && html`<button disabled=${!isAdmin}
          onClick=${() => post('/v1/endpoints/retire', { address: e.address }, `${e.address} retired`)}>Retire</button>`}</td></tr>`)}</tbody></table>
    ${eps.length === 0 && html`<p class="muted">No endpoints registered (femtoguard endpoint add).</p>`}
    <div class="panel" style="margin-top:1rem">
      <h2>Rotate</h2>
      <div class="filters">
        <label>from<select name="from" value=${from} disabled=${!isAdmin} onChange=${(e) => setFrom(e.target.value)}>
          <option value="">choose</option>${active.map((e) => html`<option value=${e.address}>${e.address}</option>`)}</select></label>
        <label>to (host:port)<input name="to" value=${to} disabled=${!isAdmin} onInput=${(e) => setTo(e.target.value.trim())} /></label>
        <button class="primary" disabled=${!isAdmin || !from || !to}
          onClick=${() => post('/v1/endpoints/rotate', { from, to }, `${to} active, ${from} draining`)}>Rotate</button>
      </div>
      ${!isAdmin && html`<p class="muted">Rotation needs an admin token.</p>`}
    </div>`;
}

// ---- enrolment ----

function Enrolment({ canAct }) {
  const [data, setData] = useState(null);
  const [message, setMessage] = useState(null);
  const load = () => api('GET', '/v1/enrolment').then(setData).catch((e) => setMessage({ error: e.message }));
  useEffect(() => { load(); }, []);
  const revoke = async (ref) => {
    try { await api('POST', `/v1/enrolment/tokens/${encodeURIComponent(ref)}/revoke`, {}); setMessage({ ok: `${ref} revoked` }); load(); }
    catch (e) { setMessage({ error: e.message }); }
  };
  return html`
    <h1>Enrolment</h1>
    ${message && html`<p class=${message.error ? 'error' : 'ok'} role="status">${message.error || message.ok}</p>`}
    <h2>Bootstrap tokens</h2>
    <p class="muted">One-time tokens for CMP or EST (femtoguard device token --device ID). The secret is never
      stored, so it is never shown here.</p>
    <table><thead><tr><th>reference</th><th>device</th><th>state</th><th>created</th><th>expires</th><th></th></tr></thead>
      <tbody>${(data ? data.tokens : []).map((t) => html`<tr data-ref=${t.ref}><td><code>${t.ref}</code></td>
        <td><a href=${`#/device/${encodeURIComponent(t.device)}`}>${t.device}</a></td><td>${t.state}</td>
        <td>${when(t.created)}</td><td>${when(t.expires)}</td>
        <td>${t.state === 'unused' && html`<button class="danger" disabled=${!canAct} onClick=${() => revoke(t.ref)}>Revoke</button>`}</td></tr>`)}</tbody></table>
    <h2>Awaiting enrolment</h2>
    <p class="muted">Registered (provisioned) devices that have not enrolled yet; their first certificate
      makes them active.</p>
    <table><thead><tr><th>device</th><th>registered</th></tr></thead>
      <tbody>${(data ? data.awaiting_enrolment : []).map((d) => html`<tr><td><a href=${`#/device/${encodeURIComponent(d.id)}`}>${d.id}</a></td>
        <td>${when(d.registered)}</td></tr>`)}</tbody></table>`;
}

// ---- audit log ----

function Audit() {
  const [subject, setSubject] = useState('');
  const [entries, setEntries] = useState([]);
  const [error, setError] = useState('');
  useEffect(() => {
    api('GET', `/v1/audit${query({ subject, limit: 300 })}`).then((d) => { setEntries(d.audit); setError(''); })
      .catch((e) => setError(e.message));
  }, [subject]);
  return html`
    <h1>Audit log</h1>
    <div class="filters"><label>subject (device id, serial, …)<input name="subject" value=${subject}
      onChange=${(e) => setSubject(e.target.value.trim())} /></label></div>
    ${error && html`<p class="error">${error}</p>`}
    <table><thead><tr><th>time</th><th>actor</th><th>action</th><th>subject</th><th>reason</th></tr></thead>
      <tbody>${entries.map((e) => html`<tr data-seq=${e.seq}><td>${when(e.ts)}</td><td>${e.actor}</td><td>${e.action}</td>
        <td>${e.subject}</td><td>${e.reason}</td></tr>`)}</tbody></table>`;
}

render(html`<${App} />`, document.getElementById('app'));
