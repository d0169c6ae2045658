/**
 * The dashboard page: static HTML and one script. Event data is only ever
 * placed with `textContent` (never parsed as HTML), so keys and values are
 * shown as text whatever they contain.
 *
 * @module
 */
import { KEY_PICKER_JS, pageHead } from "./page_parts.ts";

/** The page. Internal. */
export const PAGE_HTML = pageHead(
  "fitstream dashboard",
  `  #status { padding: 0.15em 0.6em; border-radius: 1em; background: #e8f0fe; }
  #status.ended { background: #e6f4ea; }
  #status.error { background: #fce8e6; }
  aside { min-width: 16em; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.8em; }
  aside h2 { font-size: 1em; margin: 0.2em 0 0.5em; }
  td { padding: 0.15em 0.6em 0.15em 0; font-variant-numeric: tabular-nums; }
  td:first-child { color: #555; }
  #keys:focus { position: absolute; z-index: 1; }`,
) + `<header>
  <h1>fitstream</h1>
  <span id="status">connecting…</span>
  <span id="count"></span>
  <label><input type="checkbox" id="log"> log scale</label>
  <label>charts <select id="keys" multiple size="1" title="keys to chart (Ctrl/Cmd-click to pick several)"></select></label>
</header>
<main>
  <section id="charts"></section>
  <aside><h2>Latest event</h2><table id="latest"><tbody></tbody></table></aside>
</main>
<script src="/uplot.js"></script>
<script src="/app.js"></script>
</body>
</html>
`;

/** The page's script. Internal. */
export const PAGE_JS = `"use strict";
(() => {
  const palette = ["#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb", "#a50e0e", "#5f6368"];
  // A run with 10,000 keys once built 10,001 charts (39 s for 5 events): a few are charted, the rest picked.
  const MAX_CHARTS = 8;
  let config = { keys: null };
  let steps = [];
  const columns = new Map();
  let charts = [];
  let chosen = null; // keys picked in the selector, or null for the default few
  let latest = {};
  let status = "connecting";
  let live = false;
  let renderQueued = false;
  let rendered = 0; // events on the charts now

  function chartKeys() {
    const all = (config.keys || [...columns.keys()]).filter((k) => k !== "step" && columns.has(k));
    if (chosen) return all.filter((k) => chosen.has(k));
    const losses = all.filter((k) => k === "train_loss" || k === "val_loss");
    return [...losses, ...all.filter((k) => !losses.includes(k))].slice(0, MAX_CHARTS);
  }

  function groups() {
    const keys = chartKeys();
    const out = [];
    const losses = keys.filter((k) => k === "train_loss" || k === "val_loss");
    if (losses.length) out.push(losses);
    for (const k of keys) if (!losses.includes(k)) out.push([k]);
    return out;
  }

  function dataFor(group) {
    return [steps.slice(), ...group.map((k) => columns.get(k).map((v) => (v === null || !Number.isFinite(v) ? null : v)))];
  }

  function build() {
    for (const c of charts) c.plot.destroy();
    const root = document.getElementById("charts");
    root.replaceChildren();
    const log = document.getElementById("log").checked;
    charts = groups().map((group) => {
      const box = document.createElement("div");
      box.className = "chart";
      root.appendChild(box);
      const plot = new uPlot({
        title: group.join(" · "),
        width: 520,
        height: 260,
        scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
        series: [{ label: "step" }, ...group.map((k, i) => ({ label: k, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
      }, dataFor(group), box);
      return { group, plot };
    });
  }

${KEY_PICKER_JS}
  const showKeys = () =>
    fillKeyPicker(document.getElementById("keys"), [...columns.keys()].filter((k) => k !== "step"), new Set(chartKeys()));

  function showLatest() {
    const body = document.querySelector("#latest tbody");
    body.replaceChildren(...Object.entries(latest).map(([k, v]) => {
      const tr = document.createElement("tr");
      const a = document.createElement("td");
      const b = document.createElement("td");
      a.textContent = k;
      b.textContent = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(6)) : String(v);
      tr.append(a, b);
      return tr;
    }));
    document.getElementById("count").textContent = steps.length + " events";
  }

  function setStatus(text) {
    status = text;
    const el = document.getElementById("status");
    el.textContent = text;
    el.className = text === "running" ? "" : text.startsWith("error") ? "error" : "ended";
  }

  /** Redraws once per frame at most, and only once the history has arrived. */
  function render() {
    if (!live || renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const shape = groups().map((g) => g.join("\\u0000")).join("\\u0001");
      if (shape !== charts.map((c) => c.group.join("\\u0000")).join("\\u0001")) build();
      else for (const c of charts) c.plot.setData(dataFor(c.group));
      showKeys();
      showLatest();
      rendered = steps.length;
    });
  }

  function addRows(chunk) {
    const n = steps.length;
    const count = chunk.length;
    const stepCol = chunk.columns.step;
    for (let i = 0; i < count; i++) steps.push(stepCol && typeof stepCol[i] === "number" ? stepCol[i] : n + i + 1);
    for (const k of Object.keys(chunk.columns)) if (!columns.has(k)) columns.set(k, new Array(n).fill(null));
    for (const [k, col] of columns) {
      const add = chunk.columns[k];
      for (let i = 0; i < count; i++) col.push(add ? add[i] : null);
    }
  }

  function append(row) {
    const n = steps.length;
    steps.push(typeof row.step === "number" ? row.step : n + 1);
    for (const [k, v] of Object.entries(row)) {
      if (typeof v !== "number" && v !== null) continue;
      if (!columns.has(k)) columns.set(k, new Array(n).fill(null));
    }
    for (const [k, col] of columns) col.push(typeof row[k] === "number" ? row[k] : null);
    latest = row;
    render();
  }

  document.getElementById("log").addEventListener("change", () => build());
  document.getElementById("keys").addEventListener("change", (e) => {
    chosen = new Set([...e.target.selectedOptions].map((o) => o.value));
    build();
  });
  window.fitstreamDashboard = {
    points: () => charts.map((c) => c.plot.data[0].length),
    events: () => rendered,
    status: () => status,
    charts: () => charts.map((c) => c.group),
  };

  fetch("/config").then((r) => r.json()).then((c) => {
    config = c;
    const source = new EventSource("/events");
    source.addEventListener("start", (e) => {
      columns.clear();
      steps = [];
      live = false;
      setStatus(JSON.parse(e.data).status);
    });
    source.addEventListener("rows", (e) => addRows(JSON.parse(e.data)));
    source.addEventListener("live", (e) => {
      const state = JSON.parse(e.data);
      latest = state.latest || {};
      live = true;
      setStatus(state.status);
      render();
    });
    source.addEventListener("row", (e) => append(JSON.parse(e.data)));
    source.addEventListener("status", (e) => {
      setStatus(JSON.parse(e.data));
      source.close();
    });
  });
})();
`;
