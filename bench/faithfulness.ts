/**
 * The faithfulness table: for each adversarial case of
 * `tests/faithfulness_cases.ts`, the engine the default path picks and the
 * largest gaps (weights and train_loss, relative to max(1, |value|), over
 * every epoch) between the default path and the tfjs path, and between the
 * tfjs path and `model.fit`. Not a timing: it prints what the tests assert,
 * as numbers, for the record.
 *
 *   deno run -A bench/faithfulness.ts [--backend wasm|cpu] [--quick]
 */
import { CASES, explainCase, fitTrace, gap, streamTrace } from "../tests/faithfulness_cases.ts";
import { benchArgs, jsonLine, table } from "./common.ts";
import { useBackend } from "../mod.ts";

const { backend, quick } = benchArgs();
await useBackend(backend);
const sci = (v: number) => (v === 0 ? "0" : v.toExponential(1));
const rows: (string | number)[][] = [["case", "engine", "Δw default/tfjs", "Δloss", "Δw tfjs/fit", "Δloss"]];
const results = [];
for (const c of quick ? CASES.filter((k) => k.epochs <= 10).slice(0, 4) : CASES) {
  const { engine } = explainCase(c);
  const auto = await streamTrace(c, "auto");
  const tfjs = await streamTrace(c, "tfjs");
  const paths = gap(auto, tfjs);
  const fit = c.fit === false ? undefined : gap(tfjs, await fitTrace(c));
  rows.push([
    c.name,
    engine,
    sci(paths.weights),
    sci(paths.loss),
    fit ? sci(fit.weights) : "—",
    fit ? sci(fit.loss) : "—",
  ]);
  results.push({ name: c.name, engine, paths, fit });
}
table(rows);
jsonLine("faithfulness", { cases: results.length, worst: Math.max(...results.map((r) => r.paths.weights)) });
