/**
 * How fast do events move through library stages? Events per second through
 * a 7-stage pipeline of library stages on synthetic events, against a plain
 * async-generator chain doing the same work, measured alternately in one run.
 *
 *   deno run -A bench/stages.ts [--quick]
 */
import process from "node:process";
import { augment, earlyStop, ema, pipe, take, tap, tick } from "../mod.ts";
import { jsonLine, median, runtime, table } from "./common.ts";

const quick = process.argv.includes("--quick");
const N = quick ? 20_000 : 200_000;
const ROUNDS = quick ? 2 : 5;
type Ev = { step: number; loss: number };

function source(): ReadableStream<Ev> {
  let step = 0;
  return new ReadableStream<Ev>({ pull: (c) => c.enqueue({ step: ++step, loss: 1 / (step + 1) }) }, {
    highWaterMark: 0,
  });
}

async function libraryPipeline(): Promise<number> {
  let sideEffects = 0;
  const out = pipe(
    source(),
    augment((e) => ({ val_loss: e.loss * 2 })),
    ema("val_loss", { decay: 0.9 }),
    tap(() => void sideEffects++),
    tick(() => void sideEffects++),
    take(N),
    earlyStop({ key: "val_loss", patience: N + 1 }),
    augment(() => null),
  );
  const start = performance.now();
  let count = 0;
  for await (const _ of out) count++;
  const seconds = (performance.now() - start) / 1000;
  if (count !== N || sideEffects !== 2 * N) throw new Error(`expected ${N} events, got ${count}`);
  return N / seconds;
}

async function generatorChain(): Promise<number> {
  let sideEffects = 0;
  async function* from(stream: ReadableStream<Ev>) {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      await reader.cancel();
    }
  }
  async function* map<A, B>(it: AsyncIterable<A>, f: (a: A) => B | Promise<B>) {
    for await (const a of it) yield await f(a);
  }
  async function* takeN<A>(it: AsyncIterable<A>, n: number) {
    if (n <= 0) return;
    let i = 0;
    for await (const a of it) {
      yield a;
      if (++i >= n) return;
    }
  }
  async function* stopWhen<A>(it: AsyncIterable<A>, stop: (a: A) => boolean) {
    for await (const a of it) {
      yield a;
      if (stop(a)) return;
    }
  }
  let m = 0, power = 1, best = Infinity, stale = 0;
  const d = 0.9;
  const chain = map(
    stopWhen(
      takeN(
        map(
          map(
            map(
              map(from(source()), (e) => ({ ...e, val_loss: e.loss * 2 })),
              (e) => {
                m = d * m + (1 - d) * e.val_loss;
                power *= d;
                return { ...e, val_loss_ema: m / (1 - power) };
              },
            ),
            (e) => (sideEffects++, e),
          ),
          (e) => (sideEffects++, e),
        ),
        N,
      ),
      (e) => {
        if (e.val_loss < best) [best, stale] = [e.val_loss, 0];
        else stale++;
        return stale >= N + 1;
      },
    ),
    (e) => e,
  );
  const start = performance.now();
  let count = 0;
  for await (const _ of chain) count++;
  const seconds = (performance.now() - start) / 1000;
  if (count !== N || sideEffects !== 2 * N) throw new Error(`expected ${N} events, got ${count}`);
  return N / seconds;
}

const lib: number[] = [], gen: number[] = [];
await libraryPipeline(); // warm-up
await generatorChain();
for (let r = 0; r < ROUNDS; r++) {
  lib.push(await libraryPipeline());
  gen.push(await generatorChain());
}
const libRate = median(lib), genRate = median(gen);
console.log(`${N.toLocaleString("en-US")} synthetic events through 7 stages, median of ${ROUNDS} runs (${runtime})`);
table([
  ["arm", "events/s", "µs/event"],
  ["library stages (pipe)", Math.round(libRate), 1e6 / libRate],
  ["async-generator chain", Math.round(genRate), 1e6 / genRate],
]);
console.log(
  `generator/library time ratio: ${(genRate / libRate).toFixed(2)} (library is ${
    (genRate / libRate).toFixed(2)
  }x the generator chain's cost)`,
);
jsonLine("stages", {
  events: N,
  library_events_per_s: libRate,
  generator_events_per_s: genRate,
  cost_ratio: genRate / libRate,
});
