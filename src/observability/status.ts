// The operator's view: `/status` (JSON) and `/` (a self-contained page that polls it), on the
// metrics server. Both read a snapshot main.ts hands in, taken when asked from what the
// registry and the shipping loops already keep: nothing on the FIFO path does more for it.

/** One backend of one container, as the shipping loop keeps it. */
export interface BackendStatus {
  backend: string;
  /** Lines the receiver acknowledged since this loop started. */
  shipped: number;
  /** Store entries not yet acknowledged, when the store's end is known. */
  lagEntries: number | null;
  /** Age of the oldest line not yet acknowledged; 0 when caught up. */
  lagSeconds: number;
  /** ISO time of the last send the receiver acknowledged. */
  lastSendAt: string | null;
  /** The last failure (a send, or a step of the loop), its text redacted as the plugin's log is. */
  lastError: { at: string; message: string } | null;
  retries: number;
  deadLetters: number;
  /** Lines not shipped, by reason: evicted, damaged, filtered, rate_limited. */
  dropped: Record<string, number>;
}

export interface ContainerStatus {
  /** 12 hex digits, as `docker ps` prints it. */
  id: string;
  name: string;
  /** A logger is reading its FIFO; stopped: the store is open for reads or shipping only. */
  running: boolean;
  storedBytes: number;
  segments: number;
  /** Entries read from its FIFO per second, since the previous snapshot. */
  linesPerSec: number;
  backends: BackendStatus[];
}

export interface StatusSource {
  containers(): ContainerStatus[];
}

export function statusDocument(source: StatusSource, startedAt: number): Record<string, unknown> {
  return {
    time: new Date().toISOString(),
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    containers: source.containers(),
  };
}

/** Seconds between the page's polls. */
const REFRESH_S = 2;

// No CDN, no build step: one page with its script inline. Text from containers (names, errors)
// is inserted as text nodes, never as HTML.
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>logship status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em}
#meta{color:#666;margin-bottom:1em}
table{border-collapse:collapse;width:100%;margin-bottom:1.2em}
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4;font-weight:600}
tr.container td{background:#fafafa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.stopped{color:#888}.ok{color:#176f2c}.bad{color:#b00020}
.error{color:#b00020;font-family:monospace;font-size:12px;white-space:pre-wrap}
</style></head><body>
<h1>logship</h1><div id="meta">loading…</div>
<table><thead><tr><th>container / backend</th><th>state</th><th class="num">stored</th><th class="num">segments</th>
<th class="num">lines/s in</th><th class="num">shipped</th><th class="num">lag (entries)</th><th class="num">lag (s)</th>
<th>last send</th><th class="num">retries</th><th class="num">dead letters</th><th>dropped</th><th>last error</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
"use strict";
const rows = document.getElementById("rows");
const meta = document.getElementById("meta");
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
function bytes(n) { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function ago(iso) { if (!iso) return "never"; const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000); return s < 90 ? s.toFixed(0) + " s ago" : (s / 60).toFixed(0) + " min ago"; }
function render(doc) {
  meta.textContent = doc.containers.length + " open container(s) · plugin up " + doc.uptimeSeconds + " s · " + new Date(doc.time).toLocaleTimeString();
  rows.replaceChildren();
  for (const c of doc.containers) {
    const tr = document.createElement("tr"); tr.className = "container"; tr.dataset.container = c.id;
    cell(tr, c.name + " (" + c.id + ")"); cell(tr, c.running ? "running" : "stopped", c.running ? "ok" : "stopped");
    cell(tr, bytes(c.storedBytes), "num"); cell(tr, String(c.segments), "num"); cell(tr, c.linesPerSec.toFixed(1), "num");
    for (let i = 0; i < 8; i++) cell(tr, "");
    rows.appendChild(tr);
    for (const b of c.backends) {
      const r = document.createElement("tr"); r.dataset.container = c.id; r.dataset.backend = b.backend;
      const failing = b.lastError && (!b.lastSendAt || Date.parse(b.lastError.at) > Date.parse(b.lastSendAt));
      cell(r, "  ↳ " + b.backend); cell(r, failing ? "failing" : "ok", failing ? "bad" : "ok");
      cell(r, ""); cell(r, ""); cell(r, "");
      cell(r, String(b.shipped), "num"); cell(r, b.lagEntries === null ? "?" : String(b.lagEntries), "num lag-entries");
      cell(r, b.lagSeconds.toFixed(1), "num lag-seconds"); cell(r, ago(b.lastSendAt));
      cell(r, String(b.retries), "num"); cell(r, String(b.deadLetters), "num");
      cell(r, Object.entries(b.dropped).filter(([, n]) => n > 0).map(([k, n]) => k + " " + n).join(", ") || "none");
      cell(r, failing ? ago(b.lastError.at) + ": " + b.lastError.message : "", "error");
      rows.appendChild(r);
    }
  }
}
async function poll() {
  try { const res = await fetch("status", { cache: "no-store" }); render(await res.json()); }
  catch (err) { meta.textContent = "cannot reach the plugin: " + err; }
  setTimeout(poll, ${REFRESH_S * 1000});
}
poll();
</script></body></html>
`;
