/**
 * Gives a program's uncaught errors back to the program while a tfjs backend
 * loads.
 *
 * When tfjs-backend-wasm's emscripten module starts under a Node-like runtime
 * (the module factory in `dist/tf-backend-wasm.node.js`, right after it sets up
 * its file reading), it adds two process-wide listeners that rethrow:
 * `process.on("uncaughtException", (ex) => { throw ex })` and
 * `process.on("unhandledRejection", (reason) => { throw reason })`. Deno reports
 * the error as usual, but Bun, as Node does, takes a throw inside such a
 * listener for a failure of the handler itself: it prints the listener's frame
 * in place of the program's stack and exits with status 7 instead of 1.
 * tfjs removes them only when the module is disposed, which a training
 * program never does.
 *
 * @module
 */

type ErrorEvent = "uncaughtException" | "unhandledRejection";

const EVENTS: readonly ErrorEvent[] = ["uncaughtException", "unhandledRejection"];

type Listener = (...args: unknown[]) => unknown;

interface ListenerHost {
  listeners(event: ErrorEvent): Listener[];
  removeListener(event: ErrorEvent, listener: Listener): unknown;
}

function processHost(): ListenerHost | undefined {
  const host = (globalThis as { process?: Partial<ListenerHost> }).process;
  return typeof host?.listeners === "function" && typeof host.removeListener === "function"
    ? host as ListenerHost
    : undefined; // a browser: no process-wide listeners to take back
}

/** Whether a listener's code rethrows (emscripten's do; a program's own handler has no reason to). */
function rethrows(listener: Listener): boolean {
  try {
    return /\bthrow\b/.test(Function.prototype.toString.call(listener));
  } catch {
    return false;
  }
}

/**
 * Runs `load` (a backend's set-up), then removes the uncaught-exception and
 * unhandled-rejection listeners that were added while it ran and that
 * rethrow. Listeners present before, and any that do not rethrow, stay: a
 * program's own handlers are its own.
 */
export async function keepingErrorListeners<T>(load: () => Promise<T>): Promise<T> {
  const host = processHost();
  const before = new Map(EVENTS.map((event) => [event, new Set(host?.listeners(event) ?? [])]));
  try {
    return await load();
  } finally {
    if (host) {
      for (const event of EVENTS) {
        for (const listener of host.listeners(event)) {
          if (!before.get(event)!.has(listener) && rethrows(listener)) host.removeListener(event, listener);
        }
      }
    }
  }
}
