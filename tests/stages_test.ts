import { test } from "node:test";
import assert from "node:assert/strict";
import { augment, collect, earlyStop, ema, pipe, printKeys, take, tap, tick } from "../mod.ts";
import { countingSource, fromEvents, settle } from "./helpers.ts";

const values = <K extends string>(key: K, vs: number[]) =>
  fromEvents(vs.map((v, i) => ({ step: i + 1, [key]: v }) as { step: number } & Record<K, number>));
const round = (x: unknown) => Math.round((x as number) * 1e4) / 1e4;

test("ema: 10, 20, 30 with decay 0.5 gives 10, 16.6667, 24.2857", async () => {
  const rows = await collect(pipe(values("loss", [10, 20, 30]), ema("loss", { decay: 0.5 })));
  assert.deepEqual(rows.map((r) => round(r.loss_ema)), [10, 16.6667, 24.2857]);
});

test("ema: without bias correction the mean starts at 0", async () => {
  const rows = await collect(pipe(values("loss", [10, 20]), ema("loss", { decay: 0.5, biasCorrection: false })));
  assert.deepEqual(rows.map((r) => r.loss_ema), [5, 12.5]);
});

test("ema: halfLife resolves to decay 2^(-1/halfLife); outKey overwrites", async () => {
  const d = 2 ** (-1 / 3);
  const rows = await collect(
    pipe(fromEvents([{ x: 1, s: "old" }, { x: 3, s: "old" }]), ema("x", { halfLife: 3, outKey: "s" })),
  );
  const m1 = (1 - d) * 1, m2 = d * m1 + (1 - d) * 3;
  assert.equal(rows[0].s, m1 / (1 - d));
  assert.ok(Math.abs((rows[1].s as unknown as number) - m2 / (1 - d * d)) < 1e-12);
});

test("ema: construction errors name the parameter", () => {
  assert.throws(() => ema("x"), { name: "TypeError", message: /exactly one of decay and halfLife/ });
  assert.throws(() => ema("x", { decay: 0.5, halfLife: 2 }), /exactly one of decay and halfLife/);
  assert.throws(() => ema("x", { halfLife: 0 }), { name: "RangeError", message: /halfLife must be > 0/ });
  assert.throws(() => ema("x", { halfLife: -1 }), { name: "RangeError", message: /halfLife/ });
  assert.throws(() => ema("x", { decay: 1 }), {
    name: "RangeError",
    message: /decay must lie strictly between 0 and 1/,
  });
  assert.throws(() => ema("x", { decay: 0 }), { name: "RangeError", message: /decay/ });
  assert.throws(() => ema("", { decay: 0.5 }), { name: "TypeError", message: /ema: key must be a non-empty string/ });
});

test("ema: a missing key or a non-number errors the stream and cancels the source", async () => {
  const src = countingSource((step) => ({ step }));
  await assert.rejects(collect(pipe(src.stream, ema("val_loss", { decay: 0.5 }))), {
    name: "TypeError",
    message: 'ema: event has no key "val_loss"',
  });
  assert.equal(src.cancelled, true);
  assert.equal(src.pulls, 1);
  const src2 = countingSource((step) => ({ step, v: "high" }));
  await assert.rejects(collect(pipe(src2.stream, ema("v", { decay: 0.5 }))), /event\["v"\] must be a number/);
  assert.equal(src2.cancelled, true);
});

test("earlyStop: 5, 4, 4, 4, 3 with patience 2 yields 5, 4, 4, 4 and cancels the source", async () => {
  const seq = [5, 4, 4, 4, 3, 2, 1];
  const src = countingSource((step) => ({ step, val_loss: seq[step - 1] }));
  const rows = await collect(pipe(src.stream, earlyStop({ key: "val_loss", patience: 2 })));
  assert.deepEqual(rows.map((r) => r.val_loss), [5, 4, 4, 4]);
  assert.equal(src.pulls, 4);
  assert.equal(src.cancelled, true);
});

test("earlyStop: max mode and minDelta", async () => {
  const acc = await collect(
    pipe(values("acc", [0.5, 0.6, 0.6, 0.7, 0.65, 0.64]), earlyStop({ key: "acc", patience: 2, mode: "max" })),
  );
  assert.deepEqual(acc.map((r) => r.acc), [0.5, 0.6, 0.6, 0.7, 0.65, 0.64]);
  const acc2 = await collect(
    pipe(values("acc", [0.5, 0.6, 0.6, 0.59, 0.9]), earlyStop({ key: "acc", patience: 2, mode: "max" })),
  );
  assert.deepEqual(acc2.map((r) => r.acc), [0.5, 0.6, 0.6, 0.59]);
  // minDelta: 0.95 is not < 1 - 0.1, so it does not improve.
  const md = await collect(
    pipe(values("l", [1, 0.95, 0.92, 0.5]), earlyStop({ key: "l", patience: 2, minDelta: 0.1 })),
  );
  assert.deepEqual(md.map((r) => r.l), [1, 0.95, 0.92]);
  // An improvement resets the counter.
  const reset = await collect(pipe(values("l", [3, 3, 2, 2, 1, 1, 1]), earlyStop({ key: "l", patience: 2 })));
  assert.deepEqual(reset.map((r) => r.l), [3, 3, 2, 2, 1, 1, 1]);
  const reset2 = await collect(pipe(values("l", [3, 3, 2, 2, 2, 1]), earlyStop({ key: "l", patience: 2 })));
  assert.deepEqual(reset2.map((r) => r.l), [3, 3, 2, 2, 2]);
});

test("earlyStop: construction errors name the parameter", () => {
  assert.throws(() => earlyStop({ key: "l", patience: 0 }), {
    name: "RangeError",
    message: /earlyStop: patience must be an integer >= 1/,
  });
  assert.throws(() => earlyStop({ key: "l", patience: 1.5 }), { name: "RangeError", message: /patience/ });
  // @ts-expect-error: an invalid mode is a type error too
  assert.throws(() => earlyStop({ key: "l", patience: 1, mode: "best" }), {
    name: "RangeError",
    message: /mode must be "min" or "max"/,
  });
  assert.throws(() => earlyStop({ key: "l", patience: 1, minDelta: -0.1 }), {
    name: "RangeError",
    message: /minDelta must be >= 0/,
  });
  // @ts-expect-error: options are required
  assert.throws(() => earlyStop(), { name: "TypeError", message: /earlyStop: options must be an object/ });
  assert.throws(() => earlyStop({ key: "", patience: 1 }), { name: "TypeError", message: /earlyStop: key/ });
});

test("earlyStop: a missing key errors the stream", async () => {
  const src = countingSource((step) => ({ step }));
  await assert.rejects(collect(pipe(src.stream, earlyStop({ key: "val_loss", patience: 2 }))), {
    name: "TypeError",
    message: 'earlyStop: event has no key "val_loss"',
  });
  assert.equal(src.cancelled, true);
});

test("take: first n events; take(0) yields nothing and pulls nothing", async () => {
  const src = countingSource();
  const rows = await collect(pipe(src.stream, take(3)));
  assert.deepEqual(rows.map((r) => r.step), [1, 2, 3]);
  assert.equal(src.pulls, 3);
  assert.equal(src.cancelled, true);
  const zero = countingSource();
  assert.deepEqual(await collect(pipe(zero.stream, take(0))), []);
  assert.equal(zero.pulls, 0);
  assert.equal(zero.cancelled, true);
  const short = await collect(pipe(fromEvents([{ a: 1 }]), take(5)));
  assert.deepEqual(short, [{ a: 1 }]);
});

test("take: n < 0 or not an integer is a RangeError at construction", () => {
  assert.throws(() => take(-1), { name: "RangeError", message: "take: n must be an integer >= 0, got -1" });
  assert.throws(() => take(2.5), { name: "RangeError", message: /take: n must be an integer >= 0/ });
  assert.throws(() => take(NaN), { name: "RangeError", message: /take: n/ });
  // @ts-expect-error: n must be a number
  assert.throws(() => take("3"), { name: "RangeError", message: /take: n/ });
});

test("tap: every and start select events by 1-based index; events pass unchanged", async () => {
  const seen: number[] = [];
  const rows = await collect(pipe(
    values("x", [1, 2, 3, 4, 5, 6, 7, 8]),
    tap((e) => {
      seen.push(e.step as number);
    }, { every: 3, start: 2 }),
  ));
  assert.deepEqual(seen, [2, 5, 8]);
  assert.equal(rows.length, 8);
  const all: number[] = [];
  await collect(pipe(values("x", [1, 2, 3]), tap((e) => void all.push(e.step as number))));
  assert.deepEqual(all, [1, 2, 3]);
});

test("tap/tick/augment: async callbacks are awaited in order, one event at a time", async () => {
  const log: string[] = [];
  let running = 0;
  const slow = async (tag: string) => {
    running++;
    assert.equal(running, 1, "callbacks must not overlap");
    await settle(2);
    log.push(tag);
    running--;
  };
  await collect(pipe(
    values("x", [1, 2, 3]),
    tap(async (e) => await slow(`tap${e.step}`)),
    tick(async () => await slow("tick")),
    augment(async (e) => {
      await slow(`aug${e.step}`);
      return { y: 1 };
    }),
  ));
  assert.deepEqual(log, ["tap1", "tick", "aug1", "tap2", "tick", "aug2", "tap3", "tick", "aug3"]);
});

test("tap/tick: construction errors", () => {
  // @ts-expect-error: fn must be a function
  assert.throws(() => tap(42), { name: "TypeError", message: "tap: fn must be a function, got number 42" });
  assert.throws(() => tap(() => {}, { every: 0 }), {
    name: "RangeError",
    message: /tap: every must be an integer >= 1/,
  });
  assert.throws(() => tap(() => {}, { start: 0 }), {
    name: "RangeError",
    message: /tap: start must be an integer >= 1/,
  });
  assert.throws(() => tap(() => {}, { every: 1.5 }), { name: "RangeError", message: /tap: every/ });
  // @ts-expect-error: fn must be a function
  assert.throws(() => tick(null), { name: "TypeError", message: "tick: fn must be a function, got null" });
});

test("tick: calls fn with no arguments once per event", async () => {
  const calls: number[] = [];
  const rows = await collect(pipe(values("x", [1, 2]), tick((...args: unknown[]) => void calls.push(args.length))));
  assert.deepEqual(calls, [0, 0]);
  assert.equal(rows.length, 2);
});

test("augment: merges shallowly, later keys win, null/undefined keep the event", async () => {
  const rows = await collect(pipe(
    fromEvents([{ step: 1, a: 1, b: 1 }, { step: 2, a: 1, b: 1 }]),
    augment((e) => (e.step === 1 ? { b: 2, c: 3 } : null)),
    augment(() => undefined),
  ));
  assert.deepEqual(rows, [{ step: 1, a: 1, b: 2, c: 3 }, { step: 2, a: 1, b: 1 }]);
});

test("augment: a non-object return errors the stream and cancels the source", async () => {
  for (const bad of [42, "x", [1, 2]]) {
    const src = countingSource();
    await assert.rejects(collect(pipe(src.stream, augment(() => bad as never))), {
      name: "TypeError",
      message: /augment: fn must return an object of keys to add, or null\/undefined; got/,
    });
    assert.equal(src.cancelled, true);
    assert.equal(src.pulls, 1);
  }
  // @ts-expect-error: fn must be a function
  assert.throws(() => augment({}), { name: "TypeError", message: "augment: fn must be a function, got an object" });
});

test("augment: an error thrown by fn reaches the consumer and cancels the source with it", async () => {
  const src = countingSource();
  const boom = new Error("boom");
  await assert.rejects(
    collect(pipe(
      src.stream,
      take(10),
      augment((e) => {
        if (e.step === 2) throw boom;
        return {};
      }),
    )),
    boom,
  );
  assert.equal(src.cancelled, true);
  assert.equal(src.cancelReason, boom);
  assert.equal(src.pulls, 2);
});

test("printKeys: exact strings", () => {
  const lines: string[] = [];
  const write = (l: string) => void lines.push(l);
  printKeys("train_loss", "lr", { write })({ step: 1, train_loss: 0.9, lr: 0.01 });
  printKeys("train_loss", { write, precision: 2 })({ step: 12345, train_loss: 1 / 3 });
  printKeys("ok", "bad", "missing", "name", { write })({ step: 7, ok: true, bad: false, name: "adam" });
  printKeys("loss", { write, includeStep: false })({ step: 3, loss: 2 });
  printKeys("loss", { write })({ loss: 2 }); // no step key: nothing printed for it
  printKeys("loss", { write })({ step: 2.5, loss: 2 });
  printKeys("epoch", { write, stepKey: "epoch" })({ epoch: 3 });
  printKeys("loss", { write, precision: 0 })({ step: 3, loss: 2.6 });
  printKeys("a", "b", "c", { write })({ step: 1, a: NaN, b: Infinity, c: -Infinity });
  printKeys({ write })({ step: 9 });
  assert.deepEqual(lines, [
    "step=0001 train_loss=0.9000 lr=0.0100",
    "step=12345 train_loss=0.33",
    "step=0007 ok=True bad=False missing=NA name=adam",
    "loss=2.0000",
    "loss=2.0000",
    "step=2.5 loss=2.0000",
    "epoch=0003 epoch=3.0000",
    "step=0003 loss=3",
    "step=0001 a=nan b=inf c=-inf",
    "step=0009",
  ]);
});

test("printKeys: writes to console.log by default", () => {
  const original = console.log;
  const lines: unknown[] = [];
  console.log = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    printKeys("x")({ step: 1, x: 1 });
  } finally {
    console.log = original;
  }
  assert.deepEqual(lines, ["step=0001 x=1.0000"]);
});

test("printKeys: construction errors", () => {
  assert.throws(() => printKeys("x", { precision: -1 }), {
    name: "RangeError",
    message: /printKeys: precision must be an integer >= 0/,
  });
  assert.throws(() => printKeys({ includeStep: false }), {
    name: "TypeError",
    message: /printKeys: pass at least one key/,
  });
  // @ts-expect-error: keys are strings
  assert.throws(() => printKeys("x", 3), { name: "TypeError", message: /printKeys: key 2 must be a non-empty string/ });
});
