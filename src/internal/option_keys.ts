/**
 * Unknown option keys. Every public function that takes an options object
 * refuses a key it does not know, with a `TypeError` naming the function, the
 * key and the nearest key it does know: a misspelt option (`min_delta` for
 * `minDelta`) would otherwise be ignored without a word, and the run would
 * quietly train with the default.
 *
 * @module
 */

/**
 * The keys of the options type `T`, each listed once. The list is an object
 * rather than an array so that the compiler checks it both ways: a key of `T`
 * left out (it would be refused at run time) or a key `T` lacks is a type
 * error where the list is written. Internal.
 */
export function keysOf<T extends object>(keys: { readonly [P in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

/** A key as compared: `min_delta`, `min-delta`, `MinDelta` and `minDelta` are one key. */
function normal(key: string): string {
  return key.replace(/[_\-\s]/g, "").toLowerCase();
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) rows[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}

/**
 * The known key `key` was most likely meant to be, or `undefined`: the same
 * key in another case style (snake_case, kebab-case), else the closest within
 * a third of its length in edits, else a known key it extends or cuts short
 * (`keepLast` → `keep`). Internal.
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const wanted = normal(key);
  const same = known.find((k) => normal(k) === wanted);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const candidate = normal(k);
    const edits = editDistance(wanted, candidate);
    if (edits <= Math.max(1, Math.floor(Math.max(wanted.length, candidate.length) / 3)) && edits < bestScore) {
      best = k;
      bestScore = edits;
    }
  }
  if (best !== undefined) return best;
  for (const k of known) {
    const candidate = normal(k);
    const shorter = Math.min(wanted.length, candidate.length);
    const related = wanted.startsWith(candidate) || candidate.startsWith(wanted);
    const score = Math.abs(wanted.length - candidate.length);
    if (shorter >= 3 && related && score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Throws a `TypeError` if `options` holds a key outside `known`, naming the
 * function, every such key and, for each, a hint (from `hints`, for keys
 * people bring from other libraries: `epochs`) or the nearest known key.
 * Anything but a plain object is left to the function's own checks. Internal.
 *
 * @example
 * ```ts ignore
 * checkKeys("earlyStop", { min_delta: 0.1 }, ["key", "patience", "minDelta"]);
 * // TypeError: earlyStop: options has no key "min_delta"; did you mean "minDelta"?
 * ```
 */
export function checkKeys(
  where: string,
  options: unknown,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) return;
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length === 0) return;
  const advice: { key: string; hint?: string; near?: string }[] = unknown.map((key) =>
    Object.hasOwn(hints, key) ? { key, hint: hints[key] } : { key, near: nearestKey(key, known) }
  );
  const listed = known.length > 0 ? `the options are ${known.join(", ")}` : "it takes no options";
  if (advice.length === 1) {
    const [{ key, hint, near }] = advice;
    const tail = hint !== undefined ? `: ${hint}` : near !== undefined ? `; did you mean "${near}"?` : `; ${listed}`;
    throw new TypeError(`${where}: options has no key "${key}"${tail}`);
  }
  const parts = advice.map(({ key, hint, near }) =>
    `"${key}"` + (hint !== undefined ? ` (${hint})` : near !== undefined ? ` (did you mean "${near}"?)` : "")
  );
  const lost = advice.some((a) => a.hint === undefined && a.near === undefined);
  throw new TypeError(`${where}: options has no keys ${parts.join(", ")}${lost ? `; ${listed}` : ""}`);
}
