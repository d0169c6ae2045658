/**
 * Backend selection: `wasm` (the default: the fastest that loads on Deno and
 * Bun) or `cpu`, from an argument or the `FITSTREAM_BACKEND` variable.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allowFitstreamKernels, registerKernels, useTfjsKernels } from "../kernels/register.ts";
import { describe } from "../internal/describe.ts";
import { checkKeys, keysOf } from "../internal/option_keys.ts";
import { keepingErrorListeners } from "./error_listeners.ts";
import { coreCount, MAX_HELPERS, MAX_MEMORY_MIB, setKernelLimits } from "../kernels/simd/products.ts";
import { noteWasmVersion, quietCpuBackend } from "../internal/tfjs_private.ts";
import { registerFileScheme } from "../checkpoint/file_scheme.ts";

/** The backends fitstream sets up. */
export type BackendName = "wasm" | "cpu";

/** Options of {@link useBackend}. */
export interface BackendOptions {
  /**
   * Whose kernels the wasm backend runs where tfjs-backend-wasm lacks one or
   * computes a different gradient from the cpu backend's: `"fitstream"` (the
   * default: fitstream supplies them, so every tfjs layer trains as on the cpu
   * backend) or `"tfjs"` (tfjs-backend-wasm's own, as if fitstream had never
   * touched it: max pooling and nearest upsampling then train with wasm's
   * gradients, and embedding and depthwise layers cannot train).
   */
  kernels?: "fitstream" | "tfjs";
  /**
   * How many threads fitstream's SIMD kernels may use, this one included
   * (1 to 8; default: one per core, or `FITSTREAM_THREADS`). Work too small to
   * pay for waking a thread stays on this one whatever the limit.
   */
  threads?: number;
  /**
   * How much memory fitstream's SIMD kernels may take, in MiB (16 to 1024;
   * default 1024, or `FITSTREAM_MEMORY_MIB`). A product or an epoch that
   * needs more runs in plain JS instead (slower, the same results).
   */
  memoryMiB?: number;
}

const OPTION_KEYS = keysOf<BackendOptions>({ kernels: true, threads: true, memoryMiB: true });
const MAX_THREADS = MAX_HELPERS + 1, MIN_MEMORY_MIB = 16;

const BACKENDS: readonly BackendName[] = ["wasm", "cpu"];

function envValue(name: string): string | undefined {
  try {
    const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
    return value === "" ? undefined : value;
  } catch {
    return undefined; // no permission to read the environment
  }
}

const envBackend = () => envValue("FITSTREAM_BACKEND");

/** `value` (from `source`) as an integer in [min, max], or a RangeError naming the source. */
function integerIn(source: string, value: unknown, min: number, max: number): number {
  const number = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof number !== "number" || !Number.isInteger(number) || number < min || number > max) {
    throw new RangeError(`${source} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return number;
}

/** The kernels' bounds from the options, else from the environment, else the defaults (every core, 1 GiB). */
function kernelLimits(options: BackendOptions): { threads: number; memoryMiB: number } {
  const threads = options.threads ?? envValue("FITSTREAM_THREADS");
  const memory = options.memoryMiB ?? envValue("FITSTREAM_MEMORY_MIB");
  const where = (key: string, env: string) =>
    options[key as keyof BackendOptions] !== undefined ? `useBackend: options.${key}` : env;
  return {
    threads: threads === undefined
      ? Math.min(MAX_THREADS, coreCount())
      : integerIn(where("threads", "FITSTREAM_THREADS"), threads, 1, MAX_THREADS),
    memoryMiB: memory === undefined
      ? MAX_MEMORY_MIB
      : integerIn(where("memoryMiB", "FITSTREAM_MEMORY_MIB"), memory, MIN_MEMORY_MIB, MAX_MEMORY_MIB),
  };
}

let wasmPathsSet = false;

async function activate(name: BackendName, kernels: "fitstream" | "tfjs"): Promise<void> {
  if (name === "wasm" && !wasmPathsSet) {
    // Loaded here, not at the top of the module: importing the wasm backend registers it as tfjs's
    // highest-priority backend before it is ready, and a plain tfjs script would then fail at its first
    // tf.tensor(...). Importing fitstream changes nothing in tfjs; useBackend() does.
    const { setWasmPaths, version_wasm } = await import("@tensorflow/tfjs-backend-wasm");
    noteWasmVersion(version_wasm);
    // The .wasm binaries sit next to the package's entry point, on disk.
    const entry = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
    setWasmPaths(decodeURIComponent(new URL("./", entry).pathname));
    wasmPathsSet = true;
  }
  if (kernels === "tfjs") useTfjsKernels();
  else allowFitstreamKernels();
  registerKernels(); // without them some layers train wrong, or not at all, on wasm
  // Loading the wasm module adds process-wide listeners that would take over the program's uncaught errors.
  await keepingErrorListeners(async () => {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`tf.setBackend("${name}") returned false`);
    await tf.ready();
  });
  // The cpu backend greets Node-like runtimes with advice that does not apply to Deno or Bun.
  if (name === "cpu") quietCpuBackend(tf.backend());
}

/**
 * Selects the TensorFlow.js backend and waits until it is ready. Call it
 * once, before creating tensors. `name` defaults to `FITSTREAM_BACKEND`, then
 * to `"wasm"`; when the default cannot load, it falls back to `"cpu"` with a
 * warning, while a backend asked for by name must load or this rejects with
 * the reason.
 *
 * On wasm it also registers fitstream's own kernels where tfjs-backend-wasm
 * 4.22 lacks one or computes a different gradient from the cpu backend's
 * (max pooling, nearest upsampling, embedding, depthwise convolutions: see
 * the README's "Backends"), so `model.fit` gets them too;
 * `{ kernels: "tfjs" }` puts tfjs's own back.
 *
 * Loading the wasm module adds process-wide `uncaughtException` and
 * `unhandledRejection` listeners that rethrow (under Bun, a program's uncaught
 * error then showed their frame instead of its stack, with exit status 7);
 * useBackend removes them again, and leaves a program's own listeners alone.
 *
 * `threads` and `memoryMiB` bound fitstream's SIMD kernels (by default they
 * use every core and up to 1 GiB; `FITSTREAM_THREADS` and
 * `FITSTREAM_MEMORY_MIB` say the same from the environment).
 *
 * It also lets tfjs save and load models by `file://` URL, in the files
 * tfjs-node writes: `model.save("file://dir")` writes `dir/model.json` and
 * `dir/weights.bin`; `tf.loadLayersModel("file://dir/model.json")` reads them.
 *
 * @example Use the cpu backend
 * ```ts
 * import { useBackend } from "@fitstream/fitstream";
 *
 * console.log(await useBackend("cpu")); // "cpu"
 * ```
 *
 * @example Keep fitstream's kernels to one thread and 256 MiB
 * ```ts
 * import { useBackend } from "@fitstream/fitstream";
 *
 * console.log(await useBackend("wasm", { threads: 1, memoryMiB: 256 })); // "wasm"
 * await useBackend(); // back to the defaults: every core, 1 GiB
 * ```
 *
 * @example Save a model to a folder and load it back
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { useBackend } from "@fitstream/fitstream";
 *
 * await useBackend();
 * const dir = mkdtempSync(`${tmpdir()}/model-`);
 * const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
 * await model.save(`file://${dir}`); // writes model.json and weights.bin
 * const loaded = await tf.loadLayersModel(`file://${dir}/model.json`);
 * console.log(loaded.outputs[0].shape); // [null, 1]
 * ```
 */
export async function useBackend(name?: BackendName, options: BackendOptions = {}): Promise<BackendName> {
  checkOptions(options);
  setKernelLimits(kernelLimits(options));
  registerFileScheme(); // model.save("file://…") and tf.loadLayersModel("file://…"), as with tfjs-node
  const kernels = options.kernels ?? "fitstream";
  const fromEnv = envBackend();
  const requested = name ?? fromEnv;
  if (requested !== undefined && !BACKENDS.includes(requested as BackendName)) {
    const source = name !== undefined ? "useBackend: name" : "FITSTREAM_BACKEND";
    throw new RangeError(`${source} must be "wasm" or "cpu", got ${describe(requested)}`);
  }
  if (requested !== undefined) {
    try {
      await activate(requested as BackendName, kernels);
    } catch (error) {
      throw new Error(`fitstream: the ${requested} backend could not be loaded: ${String(error)}`, { cause: error });
    }
    return requested as BackendName;
  }
  try {
    await activate("wasm", kernels);
    return "wasm";
  } catch (error) {
    console.warn(`fitstream: the wasm backend could not be loaded (${String(error)}); using cpu`);
    await activate("cpu", kernels);
    return "cpu";
  }
}

function checkOptions(options: BackendOptions): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`useBackend: options must be an object, got ${describe(options)}`);
  }
  checkKeys("useBackend", options, OPTION_KEYS);
  const { kernels } = options;
  if (kernels !== undefined && kernels !== "fitstream" && kernels !== "tfjs") {
    throw new RangeError(`useBackend: options.kernels must be "fitstream" or "tfjs", got ${describe(kernels)}`);
  }
}
