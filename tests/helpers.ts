/** Test helpers: a counting source and small utilities. */

/** A source that records every pull and its cancellation. */
export interface CountingSource<T> {
  stream: ReadableStream<T>;
  /** How many times the source's `pull` ran. */
  readonly pulls: number;
  /** The reason `cancel` was called with, or `"not cancelled"`. */
  readonly cancelReason: unknown;
  readonly cancelled: boolean;
}

/** An endless (or `limit`-long) HWM-0 source of `{ step, loss }` events. */
export function countingSource(
  make: (step: number) => Record<string, unknown> = (step) => ({ step, loss: 1 / step }),
  limit = Infinity,
): CountingSource<Record<string, unknown>> {
  let pulls = 0;
  let cancelled = false;
  let cancelReason: unknown = "not cancelled";
  const stream = new ReadableStream<Record<string, unknown>>({
    pull(controller) {
      pulls++;
      if (pulls > limit) controller.close();
      else controller.enqueue(make(pulls));
    },
    cancel(reason) {
      cancelled = true;
      cancelReason = reason;
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    get pulls() {
      return pulls;
    },
    get cancelled() {
      return cancelled;
    },
    get cancelReason() {
      return cancelReason;
    },
  };
}

/** Reads `n` values from a stream with one reader, then releases it. */
export async function readN<T>(stream: ReadableStream<T>, n: number): Promise<T[]> {
  const reader = stream.getReader();
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await reader.read();
    if (r.done) break;
    out.push(r.value);
  }
  reader.releaseLock();
  return out;
}

/** Lets queued microtasks and a macrotask run. */
export function settle(ms = 5): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A source of fixed events (HWM 0). */
export function fromEvents<T>(events: T[]): ReadableStream<T> {
  let i = 0;
  return new ReadableStream<T>({
    pull(c) {
      if (i < events.length) c.enqueue(events[i++]);
      else c.close();
    },
  }, { highWaterMark: 0 });
}

/** An HWM-0 source of `{ step, loss }` events whose pull number `failAt` throws `error`. */
export function failingSource(failAt: number, error: unknown): ReadableStream<{ step: number; loss: number }> {
  let n = 0;
  return new ReadableStream({
    pull(c) {
      if (++n === failAt) throw error;
      c.enqueue({ step: n, loss: 1 });
    },
  }, { highWaterMark: 0 });
}

/** Runs `fn` with a fresh temporary folder, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "fitstream-test-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `promise`, or a rejection naming `what` once `ms` have passed: a test of something that must not wait
 * forever fails instead of hanging the suite when it regresses.
 */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `done()` every `every` ms until it holds; fails naming `what` once `ms` have passed (a bound
 * against a hang, minutes by default, never a guess at how fast the machine is). It stops polling then.
 */
export async function waitFor(
  what: string,
  done: () => boolean | Promise<boolean>,
  { ms = 120_000, every = 20 }: { ms?: number; every?: number } = {},
): Promise<void> {
  const until = performance.now() + ms;
  while (!(await done())) {
    if (performance.now() > until) throw new Error(`${what}: still waiting after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}
