/**
 * The multi-run page: static HTML and one script. It polls `/api/runs` and
 * each shown run's new events, so the server keeps no buffer per browser.
 * Run names, keys and values are only ever placed with `textContent`.
 *
 * @module
 */
import { BEST_VALUE_JS } from "./best_value.ts";
import { KEY_PICKER_JS, pageHead } from "./page_parts.ts";

/** The page. Internal. */
export const RUNS_HTML = pageHead(
  "fitstream runs",
  `  aside { min-width: 22em; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.8em; }
  aside h2 { font-size: 1em; margin: 0.6em 0 0.4em; }
  td, th { padding: 0.15em 0.5em 0.15em 0; font-variant-numeric: tabular-nums; text-align: left; }
  .swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 0.3em; }`,
) + `<header>
  <h1>fitstream runs</h1>
  <span id="count"></span>
  <label><input type="checkbox" id="log"> log scale</label>
  <label>charts <select id="keys" multiple size="1" title="keys to chart (Ctrl/Cmd-click to pick several)"></select></label>
</header>
<main>
  <section id="charts"></section>
  <aside>
    <h2>Runs</h2><div id="runs"></div><p id="uncharted"></p>
    <h2>Latest and best</h2><table id="table"><thead></thead><tbody></tbody></table>
  </aside>
</main>
<script src="/uplot.js"></script>
<script src="/runs.js"></script>
</body>
</html>
`;

/** The page's script. Internal. */
export const RUNS_JS = `"use strict";
(() => {
  const palette = ["#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb", "#a50e0e", "#5f6368",
    "#f9ab00", "#7cb342", "#e52592", "#00897b"];
  const MAX_CHARTS = 8;
  const runs = new Map(); // name -> { color, shown, steps, columns: Map, summary }
  let chosen = null;
  let charts = [];
  let shape = "";

  const colorOf = (i) => palette[i % palette.length];
  const allKeys = () => {
    const keys = new Set();
    for (const run of runs.values()) for (const k of run.columns.keys()) if (k !== "step") keys.add(k);
    return [...keys];
  };
  function chartKeys() {
    const all = allKeys();
    if (chosen) return all.filter((k) => chosen.has(k));
    const losses = all.filter((k) => /loss/.test(k));
    return [...losses, ...all.filter((k) => !losses.includes(k))].slice(0, MAX_CHARTS);
  }
  const shown = () => [...runs.entries()].filter(([, r]) => r.shown);

  /** One chart's data: the union of the shown runs' steps, one series per run (uPlot.join aligns them). */
  function dataFor(key) {
    const tables = shown().filter(([, r]) => r.columns.has(key)).map(([, r]) => [r.steps, r.columns.get(key)]);
    if (tables.length === 0) return { data: [[]], names: [] };
    return {
      data: uPlot.join(tables.map(([x, y]) => [x.slice(), y.map((v) => (v === null || !Number.isFinite(v) ? null : v))])),
      names: shown().filter(([, r]) => r.columns.has(key)).map(([name]) => name),
    };
  }

  function build() {
    for (const c of charts) c.plot.destroy();
    const root = document.getElementById("charts");
    root.replaceChildren();
    const log = document.getElementById("log").checked;
    charts = chartKeys().map((key) => {
      const { data, names } = dataFor(key);
      const box = document.createElement("div");
      box.className = "chart";
      root.appendChild(box);
      const plot = new uPlot({
        title: key,
        width: 480,
        height: 240,
        scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
        series: [{ label: "step" }, ...names.map((n) => ({ label: n, stroke: runs.get(n).color, width: 2, spanGaps: true }))],
      }, data, box);
      return { key, names, plot };
    });
    shape = currentShape();
  }
  const currentShape = () => chartKeys().join("\\u0000") + "\\u0001" +
    chartKeys().map((k) => dataFor(k).names.join("\\u0000")).join("\\u0001") + (document.getElementById("log").checked ? "L" : "");

  function render() {
    if (currentShape() !== shape) build();
    else for (const c of charts) c.plot.setData(dataFor(c.key).data);
    showRuns();
    showTable();
    showKeys();
    showUncharted();
    document.getElementById("count").textContent = runs.size + " runs";
  }

  // The server charts a run's first 256 numeric keys; a log with more says so here rather than silently.
  function showUncharted() {
    const notes = [...runs.entries()].filter(([, r]) => r.summary.uncharted > 0)
      .map(([name, r]) => name + ": " + r.summary.uncharted + " more keys are in its log but not charted (256 are)");
    document.getElementById("uncharted").textContent = notes.join("; ");
  }

  function showRuns() {
    const root = document.getElementById("runs");
    if (root.children.length === runs.size) return;
    root.replaceChildren(...[...runs.entries()].map(([name, run]) => {
      const label = document.createElement("label");
      label.style.display = "block";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = run.shown;
      box.dataset.run = name;
      box.addEventListener("change", () => { run.shown = box.checked; render(); });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = run.color;
      const text = document.createElement("span");
      text.textContent = name;
      label.append(box, swatch, text);
      return label;
    }));
  }

  const format = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(5)) : v == null ? "" : String(v));
  function showTable() {
    const keys = chartKeys().slice(0, 3);
    const head = document.createElement("tr");
    for (const title of ["run", "events", ...keys.flatMap((k) => [k, "best"])]) {
      const th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    }
    document.querySelector("#table thead").replaceChildren(head);
    document.querySelector("#table tbody").replaceChildren(...[...runs.entries()].map(([name, run]) => {
      const tr = document.createElement("tr");
      const s = run.summary;
      // Best from the run's own columns by bestValue's rule, so times rank lowest-best like losses.
      const best = (k) => (run.columns.has(k) ? bestValue(k, run.columns.get(k)) : undefined);
      for (const value of [name, s.length, ...keys.flatMap((k) => [s.latest[k], best(k)])]) {
        const td = document.createElement("td");
        td.textContent = format(value);
        tr.appendChild(td);
      }
      return tr;
    }));
  }

${KEY_PICKER_JS}
${BEST_VALUE_JS}
  const showKeys = () => fillKeyPicker(document.getElementById("keys"), allKeys(), new Set(chartKeys()));

  async function poll() {
    const { runs: list } = await (await fetch("/api/runs")).json();
    for (const summary of list) {
      let run = runs.get(summary.name);
      if (!run) {
        run = { color: colorOf(runs.size), shown: true, steps: [], columns: new Map(), summary };
        runs.set(summary.name, run);
      }
      run.summary = summary;
      if (summary.length < run.steps.length) { run.steps = []; run.columns = new Map(); }
      while (run.steps.length < summary.length) {
        const page = await (await fetch("/api/runs/" + encodeURIComponent(summary.name) + "/history?from=" + run.steps.length)).json();
        if (page.length === 0) break;
        const n = run.steps.length;
        const stepCol = page.columns.step;
        for (let i = 0; i < page.length; i++) run.steps.push(stepCol && typeof stepCol[i] === "number" ? stepCol[i] : n + i + 1);
        for (const k of Object.keys(page.columns)) if (!run.columns.has(k)) run.columns.set(k, new Array(n).fill(null));
        for (const [k, col] of run.columns) {
          const add = page.columns[k];
          for (let i = 0; i < page.length; i++) col.push(add ? add[i] : null);
        }
      }
    }
    render();
    polled++;
  }
  let polled = 0;

  document.getElementById("log").addEventListener("change", () => build());
  document.getElementById("keys").addEventListener("change", (e) => {
    chosen = new Set([...e.target.selectedOptions].map((o) => o.value));
    build();
  });
  window.fitstreamRuns = {
    runs: () => [...runs.keys()],
    shown: () => shown().map(([name]) => name),
    charts: () => charts.map((c) => ({ key: c.key, series: c.names.slice(), points: c.plot.data[0].length })),
    events: (name) => (runs.has(name) ? runs.get(name).steps.length : 0),
    polls: () => polled,
  };
  const loop = () => poll().catch(() => {}).finally(() => setTimeout(loop, 500));
  loop();
})();
`;
