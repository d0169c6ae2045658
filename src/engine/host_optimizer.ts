/**
 * The update rules of `tf.train.adam`, `tf.train.sgd` and
 * `tf.train.momentum`, run on plain float64 arrays. The state lives in the
 * tfjs optimizer between epochs: `load` reads it through the optimizer's
 * public `getWeights()`, `save` hands it back through `setWeights()`, so
 * checkpoints, `resumeFrom` and a later switch to the tfjs path all see the
 * same state as if tfjs had taken every step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface Rule {
  /** State arrays per variable (Adam: m and v; momentum: the accumulation). */
  slots: readonly string[];
  apply(t: number, params: Float64Array, grad: Float64Array, state: Float64Array[]): void;
}

type Config = Record<string, unknown>;

function num(config: Config, key: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== "number") throw new Error(`optimizer config has no number ${key}`);
  return value;
}

function ruleFor(optimizer: tf.Optimizer): Rule | undefined {
  const config = optimizer.getConfig() as Config;
  switch (optimizer.getClassName()) {
    case "SGD": {
      const lr = num(config, "learningRate");
      return {
        slots: [],
        apply(_t, w, g) {
          for (let i = 0; i < w.length; i++) w[i] -= lr * g[i];
        },
      };
    }
    case "Momentum": {
      const lr = num(config, "learningRate"), momentum = num(config, "momentum");
      const nesterov = config.useNesterov === true;
      return {
        slots: ["momentum"],
        apply(_t, w, g, [acc]) {
          for (let i = 0; i < w.length; i++) {
            const a = acc[i] = momentum * acc[i] + g[i];
            w[i] -= lr * (nesterov ? g[i] + momentum * a : a);
          }
        },
      };
    }
    case "Adam": {
      const lr = num(config, "learningRate"), b1 = num(config, "beta1"), b2 = num(config, "beta2");
      const eps = num(config, "epsilon", 1e-7);
      return {
        slots: ["m", "v"],
        apply(t, w, g, [m, v]) {
          const c1 = 1 - b1 ** t, c2 = 1 - b2 ** t;
          for (let i = 0; i < w.length; i++) {
            const gi = g[i];
            const mi = m[i] = b1 * m[i] + (1 - b1) * gi;
            const vi = v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            w[i] -= lr * (mi / c1) / (Math.sqrt(vi / c2) + eps);
          }
        },
      };
    }
    default:
      return undefined;
  }
}

/** Whether the host engine can run `optimizer`'s update rule. */
export function hostOptimizerSupports(optimizer: tf.Optimizer): boolean {
  return ruleFor(optimizer) !== undefined;
}

/**
 * One epoch's worth of an optimizer on the host: `load`, any number of
 * `step`s, `save`.
 */
export class HostOptimizer {
  #optimizer: tf.Optimizer;
  #variables: tf.Variable[];
  #rule!: Rule;
  #state: Float64Array[][] = [];
  #iterations = 0;
  /** The tfjs optimizer's state variables read by `load`, replaced (and freed) by `save`. */
  #replaced: tf.Tensor[] = [];

  constructor(optimizer: tf.Optimizer, variables: tf.Variable[]) {
    this.#optimizer = optimizer;
    this.#variables = variables;
  }

  /** Reads the hyperparameters (they may change between epochs) and the state. */
  async load(): Promise<void> {
    const rule = ruleFor(this.#optimizer);
    if (!rule) throw new Error(`no host update rule for ${this.#optimizer.getClassName()}`);
    this.#rule = rule;
    const weights = await this.#optimizer.getWeights();
    const [iter, ...slots] = weights;
    this.#iterations = iter ? (await iter.tensor.data())[0] : 0;
    tf.dispose(iter?.tensor);
    this.#replaced = slots.map((w) => w.tensor);
    const k = this.#variables.length, s = rule.slots.length;
    this.#state = this.#variables.map((v, i) =>
      rule.slots.map((_, j) => {
        const saved = slots.length === k * s ? slots[j * k + i].tensor : undefined;
        return saved ? Float64Array.from(saved.dataSync()) : new Float64Array(v.size);
      })
    );
  }

  /** One update of every variable's `params` from its `grads`. */
  step(params: Float64Array[], grads: Float64Array[]): void {
    const t = ++this.#iterations;
    for (let i = 0; i < params.length; i++) this.#rule.apply(t, params[i], grads[i], this.#state[i]);
  }

  /** Hands the state back to the tfjs optimizer. */
  async save(): Promise<void> {
    const fresh: { name: string; tensor: tf.Tensor }[] = [{
      name: "iter",
      tensor: tf.scalar(this.#iterations, "int32"),
    }];
    this.#rule.slots.forEach((slot, j) => {
      this.#variables.forEach((v, i) => {
        fresh.push({
          name: `${v.name}/${slot}`,
          tensor: tf.tensor(Float32Array.from(this.#state[i][j]), v.shape, "float32"),
        });
      });
    });
    try {
      await this.#optimizer.setWeights(fresh);
    } finally {
      tf.dispose(fresh.map((w) => w.tensor)); // setWeights keeps its own references
    }
    tf.dispose(this.#replaced);
    this.#replaced = [];
  }
}
