/**
 * Which value of a key is a run's best on the multi-run page: the lowest for
 * losses, errors and times (`train_time_sec`: the fastest epoch is the best
 * one, not the slowest), the highest otherwise (accuracies). It runs in the
 * page, so it is script text; the tests run the same text.
 *
 * @module
 */

/** Page script: `bestValue(key, values)`, the best finite number of `values` for `key`, or `undefined`. Internal. */
export const BEST_VALUE_JS = `
  const LOWER_IS_BETTER = /loss|error|mae|mse|rmse|perplexity|time/i;
  function bestValue(key, values) {
    const lower = LOWER_IS_BETTER.test(key);
    let best;
    for (const v of values) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      if (best === undefined || (lower ? v < best : v > best)) best = v;
    }
    return best;
  }
`;
