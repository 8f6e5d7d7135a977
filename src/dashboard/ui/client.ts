/**
 * The dashboard's browser script, served as /app.js: hash routes (#/, #/queue/<q>, #/task/<id>,
 * #/workers, #/locks, #/memory), each rendered from the JSON API; one EventSource for live updates
 * (task events and overview refreshes pushed by the server). Text goes in through textContent only.
 * Kept as plain JavaScript in a string (no build step); it uses no backticks.
 */
export const CLIENT_JS = String.raw`
const csrf = document.querySelector('meta[name="tasuki-csrf"]').content;
const view = document.getElementById('view');
const state = { overview: null, charts: [], rates: {}, feed: [], route: '', queuePage: null };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}
const num = (n) => h('td', { class: 'n' }, String(n));
const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '-');
function age(ms) {
  if (ms < 10000) return (ms / 1000).toFixed(1) + 's';
  if (ms < 120000) return Math.round(ms / 1000) + 's';
  if (ms < 7200000) return Math.round(ms / 60000) + 'm';
  return Math.round(ms / 3600000) + 'h';
}
function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
  return (n / 1073741824).toFixed(2) + ' GiB';
}
function table(headers, rows, attrs) {
  return h('table', attrs || {}, h('thead', {}, h('tr', {}, headers.map((x) => h('th', { class: /^(waiting|active|delayed|dead|lag|finished \/min|keys|bytes|concurrency|running|succeeded|failed|ttl)$/i.test(x) ? 'n' : '' }, x)))), h('tbody', {}, rows));
}
function flash(text) {
  const el = document.getElementById('flash');
  el.textContent = text;
  el.style.display = 'block';
  clearTimeout(flash.t);
  flash.t = setTimeout(() => (el.style.display = 'none'), 4000);
}
async function get(path) {
  const res = await fetch('api' + path, { headers: { accept: 'application/json' } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.code + ': ' + body.error.message : res.statusText);
  return body;
}
async function post(path, body, question) {
  if (!window.confirm(question)) return null;
  const res = await fetch('api' + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tasuki-csrf': csrf },
    body: JSON.stringify(Object.assign({ confirm: true }, body)),
  });
  const out = await res.json();
  if (!res.ok) throw new Error(out.error ? out.error.message : res.statusText);
  return out;
}
const taskLink = (id) => h('a', { href: '#/task/' + encodeURIComponent(id) }, id);

function chart(points, series, label) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 300 100');
  svg.setAttribute('preserveAspectRatio', 'none');
  const now = Math.floor(Date.now() / 1000) * 1000;
  let max = 1;
  for (const p of points) for (const s of series) max = Math.max(max, s.value(p));
  for (const s of series) {
    const path = document.createElementNS(ns, 'polyline');
    const pts = [];
    const byT = new Map(points.map((p) => [p.t, p]));
    for (let i = 0; i < 300; i++) {
      const p = byT.get(now - (299 - i) * 1000);
      pts.push(i + ',' + (100 - (p ? s.value(p) : 0) / max * 95).toFixed(1));
    }
    path.setAttribute('points', pts.join(' '));
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', s.color);
    path.setAttribute('stroke-width', '1.5');
    path.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(path);
  }
  return h('div', { class: 'card' }, h('div', { class: 'muted' }, label + ' (last 5 minutes, max ' + Math.round(max) + ')'), svg);
}

function queuesTable(o) {
  const act = (queue, action) => post('/queues/' + encodeURIComponent(queue) + '/' + action, {}, (action === 'pause' ? 'Pause queue ' + queue + '? Workers take no new task from it until it is resumed; running ones finish.' : 'Resume queue ' + queue + '?')).then((r) => r && (flash(queue + ' ' + (r.paused ? 'paused' : 'resumed')), refreshOverview())).catch((e) => flash(e.message));
  return table(['Queue', 'State', 'Waiting', 'Active', 'Delayed', 'Dead', 'Lag', 'Finished /min', ''], o.queues.map((q) =>
    h('tr', { 'data-queue': q.queue }, h('td', {}, h('a', { href: '#/queue/' + encodeURIComponent(q.queue) }, q.queue)), h('td', { class: q.paused ? 'retried' : 'succeeded' }, q.paused ? 'paused' : 'running'), num(q.waiting), num(q.active), num(q.delayed), num(q.dead), h('td', { class: 'n' }, age(q.lagMs)), num(state.rates[q.queue] || 0),
      h('td', {}, q.paused ? h('button', { on: { click: () => act(q.queue, 'resume') } }, 'Resume') : h('button', { on: { click: () => act(q.queue, 'pause') } }, 'Pause')))), { id: 'queues' });
}
function workersTable(o) {
  if (!o.workers.length) return h('p', { class: 'muted' }, 'No workers have published a presence in the last hour.');
  return table(['Worker', 'Alive', 'Queues', 'Concurrency', 'Running', 'Succeeded', 'Failed', 'Last heartbeat', 'Current tasks'], o.workers.map((w) =>
    h('tr', { 'data-worker': w.name }, h('td', {}, w.name), h('td', { class: w.alive ? 'succeeded' : 'dead' }, w.alive ? 'yes' : 'no'), h('td', {}, w.queues.join(', ')), num(w.concurrency), num(w.inFlight), num(w.counts.succeeded || 0), num(w.counts.failed || 0), h('td', {}, age(w.silentMs) + ' ago'),
      h('td', {}, w.holding.map((x) => h('div', {}, x.entry + '@' + x.queue))))), { id: 'workers' });
}
function feed() {
  return table(['Finished', 'Event', 'Task', 'Id', 'Attempt', 'Run time', 'Error'], state.feed.slice(0, 50).map((e) =>
    h('tr', { 'data-event': e.type, 'data-id': e.id }, h('td', {}, time(e.finishedAt)), h('td', { class: e.type }, e.type), h('td', {}, e.task), h('td', {}, taskLink(e.id)), num(e.attempt), h('td', { class: 'n' }, e.durationMs + ' ms'), h('td', {}, e.error || ''))), { id: 'feed' });
}

function renderOverview() {
  const o = state.overview;
  if (!o) return [h('p', { class: 'muted' }, 'loading…')];
  const c = state.charts;
  return [
    h('h2', {}, 'Queues'), queuesTable(o),
    h('div', { class: 'grid' },
      chart(c, [{ color: '#1f8a4c', value: (p) => p.succeeded }, { color: '#c0392b', value: (p) => p.failed }], 'Throughput, tasks/s (green succeeded, red failed)'),
      chart(c, [{ color: '#2f5fd0', value: (p) => (p.succeeded + p.failed ? p.runMs / (p.succeeded + p.failed) : 0) }, { color: '#b9770e', value: (p) => (p.succeeded + p.failed ? p.waitMs / (p.succeeded + p.failed) : 0) }], 'Latency, ms (blue run time, amber wait)')),
    h('h2', {}, 'Live'), feed(),
  ];
}

async function renderQueue(queue, params) {
  const st = params.get('state') || 'waiting';
  const order = params.get('order') || 'oldest';
  const cursor = params.get('cursor') || '';
  const q = await get('/queues/' + encodeURIComponent(queue));
  const link = (s, o, c) => '#/queue/' + encodeURIComponent(queue) + '?state=' + s + '&order=' + o + (c ? '&cursor=' + encodeURIComponent(c) : '');
  const page = await get('/queues/' + encodeURIComponent(queue) + '/tasks?state=' + st + '&order=' + order + '&limit=50' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
  const dead = await get('/queues/' + encodeURIComponent(queue) + '/dead?limit=50');
  state.queuePage = { queue, counts: q ? [q.waiting, q.active, q.delayed, q.dead].join() : '' };
  const retry = (body, what) => post('/queues/' + encodeURIComponent(queue) + '/dead/retry', body, 'Retry ' + what + '?').then((r) => r && (flash('retried ' + r.retried), route())).catch((e) => flash(e.message));
  const purge = (body, what) => post('/queues/' + encodeURIComponent(queue) + '/dead/purge', body, 'Purge ' + what + '? This cannot be undone.').then((r) => r && (flash('purged ' + r.purged), route())).catch((e) => flash(e.message));
  return [
    h('h2', {}, 'Queue ' + queue),
    q ? h('p', { class: 'muted', id: 'counts' }, q.waiting + ' waiting · ' + q.active + ' active · ' + q.delayed + ' delayed · ' + q.dead + ' dead · lag ' + age(q.lagMs)) : '',
    h('div', { class: 'toolbar tabs' },
      ['waiting', 'active', 'delayed'].map((s) => h('button', { class: s === st ? 'on' : '', on: { click: () => (location.hash = link(s, order)) } }, s)),
      h('button', { on: { click: () => (location.hash = link(st, order === 'oldest' ? 'newest' : 'oldest')) } }, order + ' first ⇅')),
    table(['Id', 'Task', 'Attempt', st === 'delayed' ? 'Due' : 'Enqueued', 'Worker', 'Arguments'], page.tasks.map((t) =>
      h('tr', { 'data-id': t.id }, h('td', {}, taskLink(t.id)), h('td', {}, t.task), num(t.attempt), h('td', {}, time(t.dueAt || t.enqueuedAt)), h('td', {}, t.worker || ''), h('td', {}, t.claim ? 'payload store: ' + t.claim.ref + ' (' + bytes(t.claim.size) + ')' : t.args))), { id: 'tasks' }),
    h('div', { class: 'toolbar' }, cursor ? h('a', { href: link(st, order) }, '« first page') : '', page.next ? h('a', { href: link(st, order, page.next), id: 'next' }, 'next page »') : ''),
    h('h2', {}, 'Dead letters (' + dead.total + ')'),
    h('div', { class: 'toolbar' },
      h('button', { id: 'retry-all', on: { click: () => retry({ all: true }, 'all dead letters of ' + queue) } }, 'Retry all'),
      h('button', { class: 'danger', id: 'purge-all', on: { click: () => purge({ all: true }, 'all dead letters of ' + queue) } }, 'Purge all')),
    table(['Task id', 'Task', 'Reason', 'Attempts', 'Failed at', 'Error', ''], dead.letters.map((d) =>
      h('tr', { 'data-dead': d.taskId }, h('td', {}, taskLink(d.taskId)), h('td', {}, d.task), h('td', {}, d.reason), num(d.attempts), h('td', {}, time(d.failedAt)), h('td', {}, d.error.name + ': ' + d.error.message),
        h('td', {}, h('button', { on: { click: () => retry({ ids: [d.taskId] }, d.taskId) } }, 'Retry'), ' ', h('button', { class: 'danger', on: { click: () => purge({ ids: [d.taskId] }, d.taskId) } }, 'Purge')))), { id: 'dead' }),
  ];
}

async function renderTask(id) {
  const t = await get('/tasks/' + encodeURIComponent(id));
  const rows = [['State', h('span', { class: t.state, id: 'state' }, t.state)], ['Task', t.task || '-'], ['Queue', t.queue], ['Attempt', t.attempt || '-'], ['Worker', t.worker || '-'], ['Deliveries', t.deliveries || '-'], ['Due', time(t.dueAt)], ['Started', time(t.startedAt)], ['Finished', time(t.finishedAt)]];
  const history = state.feed.filter((e) => e.id === id).reverse();
  const out = [h('h2', {}, 'Task ' + id), h('dl', {}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))];
  if (t.message) out.push(h('h2', {}, 'Arguments'), t.message.claim ? h('p', {}, 'In the payload store: ' + t.message.claim.ref + ' (' + bytes(t.message.claim.size) + ', sha256 ' + t.message.claim.sha256 + ')') : h('pre', {}, t.message.args + (t.message.truncated ? '\n… (' + bytes(t.message.argsBytes) + ' in all)' : '')));
  if (t.deadLetter) out.push(h('h2', {}, 'Dead letter'), h('p', {}, 'reason ' + t.deadLetter.reason + ', ' + t.deadLetter.attempts + ' attempts, failed at ' + time(t.deadLetter.failedAt)));
  const err = t.error || (t.deadLetter && t.deadLetter.error);
  if (err) out.push(h('h2', {}, 'Error'), h('pre', { id: 'error' }, err.name + ': ' + err.message + (err.code ? ' [' + err.code + ']' : '') + (err.stack ? '\n\n' + err.stack : '')));
  if (t.result !== undefined) {
    out.push(h('h2', {}, 'Result'), h('pre', { id: 'result' }, t.result + (t.resultTruncated ? '\n…' : '')));
    if (t.resultTruncated) out.push(h('p', {}, 'Showing the first ' + bytes(t.result.length) + ' of ' + bytes(t.resultChars) + '. ', h('a', { href: 'api/tasks/' + encodeURIComponent(id) + '/result', id: 'full-result', target: '_blank' }, 'Open the full result')));
  }
  if (history.length) out.push(h('h2', {}, 'History seen by this page'), table(['Finished', 'Event', 'Attempt', 'Error'], history.map((e) => h('tr', {}, h('td', {}, time(e.finishedAt)), h('td', { class: e.type }, e.type), num(e.attempt), h('td', {}, e.error || '')))));
  return out;
}

async function renderSchedules() {
  const l = await get('/schedules');
  const act = (name, action, question) => post('/schedules/' + encodeURIComponent(name) + '/' + action, {}, question).then((r) => r && (flash(action === 'run' ? 'enqueued ' + r.taskId : name + ' ' + (action === 'pause' ? 'paused' : 'resumed')), route())).catch((e) => flash(e.message));
  const timing = (s) => (s.cron ? 'cron ' + s.cron + (s.timezone ? ' (' + s.timezone + ')' : '') : s.every ? 'every ' + age(s.every) : 'at ' + time(s.at));
  if (!l.schedules.length) return [h('h2', {}, 'Schedules'), h('p', { class: 'muted' }, 'No schedules: declare them with app.schedule() or tasuki schedule add.')];
  return [h('h2', {}, 'Schedules'), table(['Name', 'Task', 'Queue', 'Timing', 'State', 'Last tick', 'Next tick', ''], l.schedules.map((s) =>
    h('tr', { 'data-schedule': s.name }, h('td', {}, s.name), h('td', {}, s.task), h('td', {}, s.queue), h('td', {}, timing(s)), h('td', { class: s.paused ? 'retried' : '' }, s.paused ? 'paused' : s.state),
      h('td', {}, s.lastTaskId ? taskLink(s.lastTaskId) : time(s.lastTick)), h('td', {}, time(s.nextTick)),
      h('td', {}, s.paused ? h('button', { on: { click: () => act(s.name, 'resume', 'Resume schedule ' + s.name + '?') } }, 'Resume') : h('button', { on: { click: () => act(s.name, 'pause', 'Pause schedule ' + s.name + '?') } }, 'Pause'), ' ', h('button', { on: { click: () => act(s.name, 'run', 'Enqueue ' + s.task + ' now?') } }, 'Run now')))), { id: 'schedules' })];
}

async function renderLocks() {
  const l = await get('/locks');
  return [h('h2', {}, 'Locks held'), l.locks.length ? table(['Name', 'Owner token', 'Fencing token', 'TTL'], l.locks.map((x) => h('tr', {}, h('td', {}, x.name), h('td', {}, x.owner), num(x.fence || '-'), h('td', { class: 'n' }, (x.ttlMs / 1000).toFixed(1) + 's'))), { id: 'locks' }) : h('p', { class: 'muted' }, 'No lock is held.'), l.more ? h('p', { class: 'muted' }, 'More locks are held than shown.') : ''];
}

async function renderMemory(params) {
  const audit = params.get('audit') === '1';
  const m = await get('/memory' + (audit ? '?audit=1' : ''));
  const out = [h('h2', {}, 'Redis memory'), h('p', { id: 'memory' }, bytes(m.memory.used) + ' used' + (m.memory.max ? ' of ' + bytes(m.memory.max) + ' (' + Math.round(m.memory.used / m.memory.max * 100) + ' %)' : ' (no maxmemory)') + ', policy ' + (m.memory.policy || '?'))];
  out.push(h('h2', {}, 'Keys by owner'));
  if (!m.audit) out.push(h('button', { id: 'run-audit', on: { click: () => (location.hash = '#/memory?audit=1') } }, 'Run the key audit (a SCAN of every key, at most 10 s)'));
  else {
    const a = m.audit;
    out.push(h('p', { class: 'muted' }, a.scanned + ' keys scanned' + (a.complete ? '' : ' (cut short: not complete)')));
    out.push(table(['Owner', 'Keys', 'Bytes'], a.owners.map((o) => h('tr', {}, h('td', {}, o.owner), num(o.keys), h('td', { class: 'n' }, bytes(o.bytes || 0)))), { id: 'owners' }));
    if (a.findings.length) out.push(h('h2', {}, 'Findings'), table(['Kind', 'Key', 'Detail'], a.findings.map((f) => h('tr', {}, h('td', {}, f.kind), h('td', {}, f.key), h('td', {}, f.detail || '')))));
  }
  return out;
}

/** Reads the overview now (after an action), rather than wait for the next live one. */
async function refreshOverview() {
  const o = await get('/overview');
  state.overview = o;
  state.charts = o.charts;
  state.rates = o.rates;
  route();
}

async function route() {
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  state.route = parts[0] || 'overview';
  state.queuePage = null;
  for (const a of document.querySelectorAll('header a')) a.classList.toggle('on', a.dataset.nav === (state.route === 'queue' || state.route === 'task' ? 'overview' : state.route));
  let content;
  try {
    if (parts[0] === 'queue') content = await renderQueue(parts[1], params);
    else if (parts[0] === 'task') content = await renderTask(parts[1]);
    else if (parts[0] === 'workers') content = state.overview ? [h('h2', {}, 'Workers'), workersTable(state.overview)] : [h('p', {}, 'loading…')];
    else if (parts[0] === 'locks') content = await renderLocks();
    else if (parts[0] === 'schedules') content = await renderSchedules();
    else if (parts[0] === 'memory') content = await renderMemory(params);
    else content = renderOverview();
  } catch (e) {
    content = [h('p', { class: 'dead', id: 'error' }, e.message)];
  }
  view.replaceChildren(...content.flat().filter((x) => x !== ''));
}

function connect() {
  const source = new EventSource('api/events');
  const status = document.getElementById('status');
  source.onopen = () => (status.textContent = 'live');
  source.onerror = () => (status.textContent = 'reconnecting…');
  source.addEventListener('overview', (ev) => {
    const m = JSON.parse(ev.data);
    state.overview = m.overview;
    state.charts = m.charts;
    state.rates = m.rates;
    status.textContent = 'live · ' + time(m.overview.time);
    if (state.route === 'overview' || state.route === 'workers') route();
    else if (state.queuePage) {
      const q = m.overview.queues.find((x) => x.queue === state.queuePage.queue);
      if (q && [q.waiting, q.active, q.delayed, q.dead].join() !== state.queuePage.counts) route();
    }
  });
  source.addEventListener('task', (ev) => {
    const m = JSON.parse(ev.data);
    state.feed.unshift(m.event);
    if (state.feed.length > 500) state.feed.pop();
    if (state.route === 'overview') {
      const el = document.getElementById('feed');
      if (el) el.replaceWith(feed());
    }
  });
}

window.addEventListener('hashchange', route);
route();
connect();
`;
