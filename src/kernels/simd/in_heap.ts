/**
 * Kernels that work in another module's memory — tfjs-backend-wasm's heap,
 * which is not shared — on the thread that calls them: each one its own
 * module, instantiated on that memory the first time it is asked for there
 * and kept for the memory's life.
 *
 * @module
 */
import { assemble, type FunctionDef } from "./assemble.ts";

const made = new WeakMap<WebAssembly.Memory, Map<string, unknown>>();

/**
 * The function `define` gives, working in `memory`: made the first time
 * `key` is asked for in that memory (a kernel made in variants — one per row
 * width, say — gives each its own key). `T` is its signature: byte addresses
 * in `memory`, and sizes. Internal.
 */
export function inHeap<T>(memory: WebAssembly.Memory, key: string, define: () => FunctionDef): T {
  let kernels = made.get(memory);
  if (!kernels) made.set(memory, kernels = new Map());
  let kernel = kernels.get(key);
  if (kernel === undefined) {
    const fn = define();
    const module = new WebAssembly.Module(assemble([fn], 0, false));
    kernel = new WebAssembly.Instance(module, { env: { memory } }).exports[fn.name];
    kernels.set(key, kernel);
  }
  return kernel as T;
}
