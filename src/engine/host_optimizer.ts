/**
 * The update rules of `tf.train.sgd`, `tf.train.momentum`, `tf.train.adam`,
 * `tf.train.rmsprop`, `tf.train.adagrad`, `tf.train.adadelta` and
 * `tf.train.adamax` on plain arrays, one entry each
 * in {@link HOST_RULES}: adding a rule is one entry there plus its tests
 * (`tests/engine_test.ts`'s optimizers, a faithfulness case). Parameters and state are float32 arrays, as tfjs keeps
 * them; each update is computed in float64 from the float32 hyperparameters
 * tfjs uses and rounded once as it is stored. tfjs rounds after every op
 * instead, which can move a result by an ulp, no more: long runs stay within
 * float32 noise of the tfjs path, and an update below half an ulp of a weight
 * changes nothing, as in tfjs. Adam on the SIMD kernels (arrays in their
 * memory, the wide models') computes tfjs's own float32 operations instead,
 * bit for bit (`kernels/simd/adam.ts`).
 *
 * The state lives in the tfjs optimizer between epochs. `load` reads it from
 * the fields tfjs itself reads in `applyGradients` (SGD's cached `-lr`
 * tensor, Momentum's cached momentum tensor, Adam's live `learningRate` and
 * its `accBeta` variables), so a property written behind our back does here
 * exactly what it does in tfjs. `save` writes it back into the same fields.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type AdamScalars, simdKernels } from "../kernels/simd/products.ts";
import { type OptimizerInternals, optimizerInternals, type Slots } from "../internal/tfjs_private.ts";
import { readInto, tensorOf } from "./exchange.ts";

const f32 = Math.fround;

/** What the host knows of a tfjs optimizer's internals: SGD, Momentum and Adam's (tfjs_private.ts), and the rest's. */
interface Internals extends OptimizerInternals {
  decay?: number;
  momentum?: number;
  centered?: boolean;
  accumulatedMeanSquares?: Slots;
  accumulatedMoments?: Slots;
  accumulatedMeanGrads?: Slots;
  initialAccumulatorValue?: number;
  accumulatedGrads?: Slots;
  rho?: number;
  accumulatedUpdates?: Slots;
  iteration?: tf.Variable;
  accumulatedWeightedInfNorm?: Slots;
}

/** A slot array of a rule: its field, the suffix tfjs names its variables with, and the value a new slot starts at. */
interface SlotSpec {
  field: keyof Internals;
  suffix: string;
  /** The starting value of a slot tfjs has not made yet (0 when absent). */
  init?: (o: Internals) => number;
}

/**
 * A variable's gradient for a step: float64, or float32 where a product wrote
 * it in place (the layer engine's wide Dense kernels; the same values as
 * their float64 copy, read as numbers alike).
 */
export type StepGradient = Float64Array | Float32Array;

/** An update rule: its slot arrays and one step over one variable. */
interface Rule {
  slots: readonly SlotSpec[];
  /** Reads the hyperparameters tfjs will use for the next step. */
  read(o: Internals): void;
  /** Called once per step before the variables are updated. */
  begin(): void;
  apply(w: Float32Array, g: StepGradient, state: Float32Array[]): void;
  /** Called once per step after every variable. */
  end(): void;
  /** Writes the per-step scalars (Adam's accBeta) back. */
  write(o: Internals): void;
}

function scalarOf(t: tf.Tensor): number {
  return t.dataSync()[0];
}

function sgdRule(): Rule {
  let c = 0; // tfjs's `c`: -lr as a float32 scalar, refreshed only by setLearningRate
  return {
    slots: [],
    read(o) {
      c = scalarOf(o.c!);
    },
    begin() {},
    apply(w, g) {
      for (let i = 0; i < w.length; i++) w[i] += c * g[i]; // rounded to float32 as it is stored
    },
    end() {},
    write() {},
  };
}

function momentumRule(): Rule {
  let c = 0, m = 0, nesterov = false; // tfjs reads the cached tensors `c` and `m`, not `momentum`
  return {
    slots: [{ field: "accumulations", suffix: "momentum" }],
    read(o) {
      c = scalarOf(o.c!);
      m = scalarOf(o.m!);
      nesterov = o.useNesterov === true;
    },
    begin() {},
    apply(w, g, [acc]) {
      for (let i = 0; i < w.length; i++) {
        acc[i] = m * acc[i] + g[i]; // rounded to float32 as it is stored, like w
        w[i] += c * (nesterov ? g[i] + acc[i] * m : acc[i]);
      }
    },
    end() {},
    write() {},
  };
}

function adamRule(): Rule {
  let acc1 = 0, acc2 = 0, r1 = 0, r2 = 0;
  const s: AdamScalars = { b1: 0, ob1: 0, b2: 0, ob2: 0, c1: 0, c2: 0, eps: 0, nlr: 0 };
  const simd = simdKernels();
  return {
    slots: [{ field: "accumulatedFirstMoment", suffix: "m" }, { field: "accumulatedSecondMoment", suffix: "v" }],
    read(o) {
      // As applyGradients builds its scalars: each JS number becomes a float32 tensor.
      s.nlr = f32(-o.learningRate!);
      s.b1 = f32(o.beta1!);
      s.b2 = f32(o.beta2!);
      s.ob1 = f32(1 - o.beta1!);
      s.ob2 = f32(1 - o.beta2!);
      s.eps = f32(o.epsilon!);
      acc1 = scalarOf(o.accBeta1!);
      acc2 = scalarOf(o.accBeta2!);
    },
    begin() {
      s.c1 = f32(1 - acc1);
      s.c2 = f32(1 - acc2);
      // The JS loop multiplies by the bias corrections' reciprocals (float64) instead of dividing by them: a
      // division and a square root per weight are what bound its speed.
      r1 = 1 / s.c1;
      r2 = 1 / s.c2;
    },
    apply(w, g, [m, v]) {
      // On the SIMD kernels when the arrays live in their memory: tfjs's float32 operations, bit for bit; the last
      // weights of a length not a multiple of 4 (all of an array of 1–3) then take the same operations in JS.
      const done = simd?.adam(w, g, m, v, s);
      const { b1, ob1, b2, ob2, c1, c2, eps, nlr } = s;
      if (done !== undefined) {
        for (let i = done; i < w.length; i++) {
          const gi = f32(g[i]);
          m[i] = f32(f32(m[i] * b1) + f32(gi * ob1));
          v[i] = f32(f32(v[i] * b2) + f32(f32(gi * gi) * ob2));
          w[i] += f32(f32(f32(m[i] / c1) / f32(f32(Math.sqrt(f32(v[i] / c2))) + eps)) * nlr);
        }
        return;
      }
      // float64 within the step, float32 on every store (w, m and v are Float32Arrays): tfjs rounds after each op,
      // which moves a result by at most an ulp — while rounding here after each op cost 25% of a tutorial epoch.
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        m[i] = m[i] * b1 + gi * ob1;
        v[i] = v[i] * b2 + gi * gi * ob2;
        w[i] += (m[i] * r1) / (Math.sqrt(v[i] * r2) + eps) * nlr;
      }
    },
    end() {
      acc1 = f32(acc1 * s.b1);
      acc2 = f32(acc2 * s.b2);
    },
    write(o) {
      tf.tidy(() => {
        o.accBeta1!.assign(tf.scalar(acc1));
        o.accBeta2!.assign(tf.scalar(acc2));
      });
    },
  };
}

function rmspropRule(o: Internals): Rule {
  let lr = 0, decay = 0, od = 0, momentum = 0, eps = 0;
  const centered = o.centered === true;
  return {
    slots: [
      { field: "accumulatedMeanSquares", suffix: "rms" },
      { field: "accumulatedMoments", suffix: "momentum" },
      ...(centered ? [{ field: "accumulatedMeanGrads", suffix: "mg" } as const] : []),
    ],
    read(o) {
      // As applyGradients builds its scalars: each JS number becomes a float32 tensor.
      lr = f32(o.learningRate!);
      decay = f32(o.decay!);
      od = f32(1 - o.decay!);
      momentum = f32(o.momentum!);
      eps = f32(o.epsilon!);
    },
    begin() {},
    apply(w, g, [ms, mom, mg]) {
      // float64 within the step, float32 on every store, as the other rules.
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        ms[i] = ms[i] * decay + gi * gi * od;
        if (centered) {
          // As tfjs: ε is subtracted with the squared mean (√(ms − (mg² + ε))), so a weight whose gradient stays 0 gets
          // NaN, in tfjs and here alike.
          mg[i] = mg[i] * decay + gi * od;
          mom[i] = mom[i] * momentum + (gi * lr) / Math.sqrt(ms[i] - (mg[i] * mg[i] + eps));
        } else {
          mom[i] = mom[i] * momentum + (gi * lr) / Math.sqrt(ms[i] + eps);
        }
        w[i] -= mom[i];
      }
    },
    end() {},
    write() {},
  };
}

function adagradRule(): Rule {
  let nlr = 0, eps = 0;
  return {
    slots: [{ field: "accumulatedGrads", suffix: "accumulator", init: (o) => f32(o.initialAccumulatorValue!) }],
    read(o) {
      nlr = f32(-o.learningRate!);
      eps = f32(tf.backend().epsilon()); // tfjs adds the backend's epsilon, not a field
    },
    begin() {},
    apply(w, g, [acc]) {
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        acc[i] += gi * gi;
        w[i] += gi / Math.sqrt(acc[i] + eps) * nlr;
      }
    },
    end() {},
    write() {},
  };
}

function adadeltaRule(): Rule {
  let nlr = 0, rho = 0, orho = 0, eps = 0;
  return {
    slots: [{ field: "accumulatedGrads", suffix: "accum_grad" }, { field: "accumulatedUpdates", suffix: "accum_var" }],
    read(o) {
      nlr = f32(-o.learningRate!);
      rho = f32(o.rho!);
      orho = f32(1 - o.rho!);
      eps = f32(o.epsilon!);
    },
    begin() {},
    apply(w, g, [grads, updates]) {
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        // As tfjs: the step's update divides by the accumulated gradient from before this step's.
        const update = Math.sqrt(updates[i] + eps) / Math.sqrt(grads[i] + eps) * gi;
        grads[i] = grads[i] * rho + gi * gi * orho;
        updates[i] = updates[i] * rho + update * update * orho;
        w[i] += update * nlr;
      }
    },
    end() {},
    write() {},
  };
}

function adamaxRule(): Rule {
  let b1 = 0, ob1 = 0, b2 = 0, eps = 0, nlr = 0, decay = 0, iteration = 0, acc1 = 0, factor = 0;
  return {
    slots: [{ field: "accumulatedFirstMoment", suffix: "m" }, { field: "accumulatedWeightedInfNorm", suffix: "v" }],
    read(o) {
      nlr = f32(-o.learningRate!);
      b1 = f32(o.beta1!);
      ob1 = f32(1 - o.beta1!);
      b2 = f32(o.beta2!);
      eps = f32(o.epsilon!);
      decay = f32(o.decay!);
      iteration = scalarOf(o.iteration!);
      acc1 = scalarOf(o.accBeta1!);
    },
    begin() {
      // tfjs's scalars, each op rounded to float32: (−lr / (iteration · decay + 1)) / (1 − accBeta1).
      factor = f32(f32(nlr / f32(f32(iteration * decay) + 1)) / f32(1 - acc1));
    },
    apply(w, g, [m, u]) {
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        m[i] = m[i] * b1 + gi * ob1;
        u[i] = Math.max(u[i] * b2, Math.abs(gi));
        w[i] += factor * (m[i] / (u[i] + eps));
      }
    },
    end() {
      iteration = f32(iteration + 1);
      acc1 = f32(acc1 * b1);
    },
    write(o) {
      tf.tidy(() => {
        o.iteration!.assign(tf.scalar(iteration));
        o.accBeta1!.assign(tf.scalar(acc1));
      });
    },
  };
}

/** A class, as a key of {@link HOST_RULES}. */
// deno-lint-ignore no-explicit-any
export type Constructor = abstract new (...args: any[]) => object;

/** A host update rule and the tfjs fields it reads (checked before the host takes an optimizer). */
export interface HostRule {
  fields: readonly (keyof Internals)[];
  /** The rule for one optimizer (its fixed settings, such as RMSProp's `centered`, read once). */
  make: (o: Internals) => Rule;
}

/** The update rules, by exact tfjs class (the planner checks that an instance is untouched). */
export const HOST_RULES: ReadonlyMap<Constructor, HostRule> = new Map<Constructor, HostRule>([
  [tf.SGDOptimizer, { fields: ["c"], make: sgdRule }],
  [tf.MomentumOptimizer, { fields: ["c", "m", "accumulations"], make: momentumRule }],
  [tf.AdamOptimizer, {
    fields: [
      "learningRate",
      "beta1",
      "beta2",
      "epsilon",
      "accBeta1",
      "accBeta2",
      "accumulatedFirstMoment",
      "accumulatedSecondMoment",
    ],
    make: adamRule,
  }],
  [tf.RMSPropOptimizer, {
    fields: ["learningRate", "decay", "momentum", "epsilon", "accumulatedMeanSquares", "accumulatedMoments"],
    make: rmspropRule,
  }],
  [tf.AdagradOptimizer, {
    fields: ["learningRate", "initialAccumulatorValue", "accumulatedGrads"],
    make: adagradRule,
  }],
  [tf.AdadeltaOptimizer, {
    fields: ["learningRate", "rho", "epsilon", "accumulatedGrads", "accumulatedUpdates"],
    make: adadeltaRule,
  }],
  [tf.AdamaxOptimizer, {
    fields: [
      "learningRate",
      "beta1",
      "beta2",
      "epsilon",
      "decay",
      "iteration",
      "accBeta1",
      "accumulatedFirstMoment",
      "accumulatedWeightedInfNorm",
    ],
    make: adamaxRule,
  }],
]);

/** The tfjs class names of the optimizers the host engine trains with (for explainEngine). */
export const HOST_RULE_NAMES: readonly string[] = [...HOST_RULES.keys()].map((c) =>
  (c as unknown as { className: string }).className
);

/**
 * One epoch's worth of an optimizer on the host: `load`, any number of
 * `step`s, `save`. Slot `i` belongs to `variables[i]`, as in tfjs.
 */
export class HostOptimizer {
  #optimizer: Internals;
  #variables: tf.Variable[];
  #rule: Rule;
  #state: Float32Array[][] = [];
  #iterations = 0;

  constructor(optimizer: tf.Optimizer, variables: tf.Variable[]) {
    const rule = HOST_RULES.get(optimizer.constructor as Constructor);
    if (!rule) throw new Error(`no host update rule for ${optimizer.getClassName()}`);
    const internals = optimizerInternals<Internals>(optimizer); // tfjs's private state: see tfjs_private.ts
    if (!internals) throw new Error(`no host update rule for ${optimizer.getClassName()} on this tfjs version`);
    this.#optimizer = internals;
    this.#variables = variables;
    this.#rule = rule.make(this.#optimizer);
  }

  /**
   * Reads the hyperparameters (they may change between epochs) and the
   * state, into arrays from `allocate` (the SIMD kernels' memory, so Adam
   * updates them where they are).
   */
  load(allocate: (length: number) => Float32Array = (n) => new Float32Array(n)): void {
    const o = this.#optimizer, rule = this.#rule;
    rule.read(o);
    this.#iterations = o.iterations_ ?? 0;
    this.#state = this.#variables.map((v, i) =>
      rule.slots.map(({ field, init }) => {
        const slot = (o[field] as Slots)[i];
        const state = allocate(v.size);
        if (slot) readInto(slot.variable, state);
        else if (init) state.fill(init(o));
        return state;
      })
    );
  }

  /** One update of every variable's `params` from its `grads`. */
  step(params: Float32Array[], grads: StepGradient[]): void {
    const rule = this.#rule;
    rule.begin();
    for (let i = 0; i < params.length; i++) rule.apply(params[i], grads[i], this.#state[i]);
    rule.end();
    // tfjs counts a step per applyGradients: a loss that reads optimizer.iterations sees it move.
    this.#optimizer.iterations_ = ++this.#iterations;
  }

  /** Hands the state back to the tfjs optimizer, into the variables it reads. */
  save(): void {
    const o = this.#optimizer, rule = this.#rule;
    rule.slots.forEach(({ field, suffix }, j) => {
      const slots = o[field] as Slots;
      this.#variables.forEach((v, i) => {
        const value = this.#state[i][j]; // tensorOf copies it: the state's memory is reused after the epoch
        const slot = slots[i];
        if (slot) {
          tf.tidy(() => slot.variable.assign(tensorOf(value, v.shape)));
        } else {
          const variable = tf.tidy(() => tensorOf(value, v.shape).variable(false));
          slots[i] = { originalName: `${v.name}/${suffix}`, variable };
        }
      });
    });
    rule.write(o);
  }
}
