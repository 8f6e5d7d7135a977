/**
 * The dashboard's one HTML page: layout and styles; the client script (./client.ts) renders each
 * view from the JSON API and the live feed. The CSRF token rides in a meta tag for the script's
 * POSTs.
 */

const STYLE = `
:root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ec; --bg:#f7f8fa; --ok:#1f8a4c; --bad:#c0392b; --warn:#b9770e; --accent:#2f5fd0; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:20px; align-items:center; padding:10px 20px; background:#1d2330; color:#fff; }
header b { font-size:16px; letter-spacing:.5px; }
header a { color:#cfd6e6; text-decoration:none; }
header a.on, header a:hover { color:#fff; }
header .status { margin-left:auto; font-size:12px; color:#9aa3b5; }
main { padding:16px 20px; max-width:1400px; }
h2 { font-size:15px; margin:18px 0 8px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
a { color:var(--accent); }
.grid { display:grid; grid-template-columns: 1fr 1fr; gap:16px; }
.card { background:#fff; border:1px solid var(--line); padding:10px 12px; }
.muted { color:var(--muted); }
.succeeded { color:var(--ok); } .dead, .failed { color:var(--bad); } .retried, .expired { color:var(--warn); }
pre { background:#fff; border:1px solid var(--line); padding:8px; overflow:auto; max-height:420px; white-space:pre-wrap; word-break:break-all; }
button { font:inherit; padding:3px 10px; border:1px solid var(--line); background:#fff; cursor:pointer; }
button.danger { color:var(--bad); border-color:#e6b0aa; }
.tabs button.on { background:var(--fg); color:#fff; }
dl { display:grid; grid-template-columns: 140px 1fr; gap:4px 12px; }
dt { color:var(--muted); }
svg { width:100%; height:120px; display:block; }
.toolbar { display:flex; gap:8px; align-items:center; margin:8px 0; }
#flash { position:fixed; bottom:16px; right:16px; background:#1d2330; color:#fff; padding:8px 14px; display:none; }
`;

function escapeAttr(s: string): string {
  return s.replace(
    /[&"<>]/g,
    (c) => ({ '&': '&amp;', '"': '&quot;', '<': '&lt;', '>': '&gt;' })[c] as string,
  );
}

/** The page, with this server's CSRF token and the app's key prefix. */
export function page(csrfToken: string, prefix: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="tasuki-csrf" content="${escapeAttr(csrfToken)}">
<title>tasuki · ${escapeAttr(prefix)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <b>tasuki</b>
  <a href="#/" data-nav="overview">Queues</a>
  <a href="#/workers" data-nav="workers">Workers</a>
  <a href="#/schedules" data-nav="schedules">Schedules</a>
  <a href="#/locks" data-nav="locks">Locks</a>
  <a href="#/memory" data-nav="memory">Memory &amp; keys</a>
  <span class="status" id="status">connecting…</span>
</header>
<main id="view"></main>
<div id="flash"></div>
<script type="module" src="app.js"></script>
</body>
</html>`;
}
