/**
 * A helper thread of the SIMD products: instantiates the kernels on the
 * shared memory it is given, then waits for jobs in the control block and
 * runs its share of each (see share.ts). It spins briefly before it sleeps:
 * a training step asks for several products in a row, and waking a sleeping
 * thread cost ~80 µs on Deno (~1 µs when it was spinning).
 *
 * @module
 */
import type { Kernels } from "./kernels.ts";
import { isServerRuntime, join, leave, runShare, WORD } from "./share.ts";

/** What the training thread sends a helper once. */
export interface HelperStart {
  memory: WebAssembly.Memory;
  /**
   * The compiled module itself, not its bytes: on Bun a helper that compiled
   * its own copy ran its first products at the baseline tier, slower than the
   * training thread, until JavaScriptCore optimized that copy too.
   */
  module: WebAssembly.Module;
  index: number;
}

/** Spins (about 0.2–0.4 ms here) before sleeping on the job word: longer than the JS work between two products of a step. */
const SPINS = 200_000;

async function serve(start: HelperStart): Promise<void> {
  const instance = await WebAssembly.instantiate(start.module, { env: { memory: start.memory } });
  const kernels = instance.exports as unknown as Kernels;
  const ctl = new Int32Array(start.memory.buffer, 0, 64);
  let seen = Atomics.load(ctl, WORD.job);
  Atomics.add(ctl, WORD.ready, 1);
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctl, WORD.job) === seen) {
      if (++spins > SPINS) {
        Atomics.wait(ctl, WORD.job, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(ctl, WORD.job);
    if (seen < 0) return;
    if (!join(ctl)) continue;
    try {
      runShare(kernels, ctl, start.index);
    } finally {
      leave(ctl);
    }
  }
}

const nodeThreads = isServerRuntime ? await import("node:worker_threads") : undefined;
if (nodeThreads?.parentPort) {
  nodeThreads.parentPort.once("message", (start: HelperStart) => void serve(start));
} else {
  (globalThis as unknown as { onmessage: (e: MessageEvent<HelperStart>) => void }).onmessage = (e) =>
    void serve(e.data);
}
