/**
 * Whether a tfjs object is exactly what tfjs shipped: an instance of a
 * built-in class (not a subclass) whose methods nobody replaced — the host
 * engines mirror only such objects. The methods of every class the engines
 * allow are captured when this module loads (`protect`), before user code
 * can patch them.
 *
 * @module
 */
import type { Constructor } from "./host_optimizer.ts";
import { registeredClass } from "../internal/tfjs_private.ts";
import type { Penalty } from "./penalty.ts";

export { registeredClass };

/** The own methods of each prototype of each allowed class, as tfjs shipped them (captured at load). */
const PRISTINE = new Map<object, Map<string, unknown>>();

/** The prototypes of `cls`, from its own up to (not including) `Object.prototype`. */
function prototypesOf(cls: Constructor): object[] {
  const out: object[] = [];
  for (let proto = cls.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    out.push(proto);
  }
  return out;
}

function ownMethods(proto: object): Map<string, unknown> {
  const methods = new Map<string, unknown>();
  for (const name of Object.getOwnPropertyNames(proto)) {
    if (name === "constructor") continue;
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    methods.set(name, d.value ?? d.get);
  }
  return methods;
}

/** Captures the methods of `classes` as they are now (call at module load, before user code runs). */
export function protect(classes: (Constructor | undefined)[]): void {
  for (const cls of classes) {
    if (cls) {
      for (const proto of prototypesOf(cls)) if (!PRISTINE.has(proto)) PRISTINE.set(proto, ownMethods(proto));
    }
  }
}

/**
 * `undefined` when `value` is an instance of exactly `cls` (not a subclass)
 * whose methods are the ones tfjs shipped (none set on the instance, none
 * replaced or added on its prototypes); otherwise what differs.
 */
export function untouched(value: object, cls: Constructor | undefined): string | undefined {
  if (!cls || Object.getPrototypeOf(value) !== cls.prototype) return "is not a built-in tfjs class (a subclass?)";
  const prototypes = prototypesOf(cls);
  if (!prototypes.every((p) => PRISTINE.has(p))) return "is a class the host engine did not capture at load";
  for (const name of Object.getOwnPropertyNames(value)) {
    if (prototypes.some((p) => PRISTINE.get(p)!.has(name))) return `has its own ${name}()`;
  }
  for (const proto of prototypes) {
    const shipped = PRISTINE.get(proto)!;
    const now = ownMethods(proto);
    for (const [name, method] of now) {
      if (method !== shipped.get(name)) return `has a patched ${name}()`;
    }
  }
  return undefined;
}

const L1L2 = registeredClass("L1L2");
protect([L1L2]);

/**
 * A weight regularizer as a penalty (`undefined` for none), or why the host
 * engine cannot apply it: it is not an untouched L1L2 with finite factors.
 */
export function penaltyOf(layer: string, which: string, regularizer: unknown): Penalty | string | undefined {
  if (regularizer == null) return undefined;
  const touched = untouched(regularizer as object, L1L2);
  if (touched) return `layer "${layer}" has a ${which} regularizer that ${touched}`;
  const { l1, l2 } = regularizer as { l1: unknown; l2: unknown };
  if (typeof l1 !== "number" || typeof l2 !== "number" || !Number.isFinite(l1) || !Number.isFinite(l2)) {
    return `layer "${layer}" has a ${which} regularizer without finite l1 and l2`;
  }
  return { l1: Math.fround(l1), l2: Math.fround(l2) };
}
