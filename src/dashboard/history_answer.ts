/**
 * The live dashboard's `/history` answers, bounded. A page of the history
 * (up to `HISTORY_PAGE` events) is copied when asked for into one
 * `Float64Array` per key, 8 bytes a value whatever the run does meanwhile,
 * and sent as JSON a piece at a time, each piece made when the connection
 * has taken the one before. Before, each answer was one JSON text made at
 * once: a reader that stopped reading held all of it (100 such readers took
 * the process from 113 MB to 1.2 GB), and on Deno a multi-megabyte body
 * still being written held the server's shutdown forever.
 *
 * The dashboard sends at most `maxClients` answers at once (more get HTTP
 * 503), and once the run has ended an answer whose reader takes nothing for
 * a grace period is cut, as a page that stopped reading the live events is.
 *
 * @module
 */

/** A page of the history as `History.slice` makes it. */
interface Page {
  from: number;
  length: number;
  columns: Record<string, (number | null)[]>;
}

/** Values per piece of an answer: at most ~50 KB of JSON. */
const VALUES_PER_PIECE = 2048;

/** The JSON text of `{ ...page, ...tail }` in pieces, from a copy of the page's columns. */
function* jsonPieces(
  { from, length }: { from: number; length: number },
  columns: [string, Float64Array][],
  tail: object,
): Generator<string> {
  yield `{"from":${from},"length":${length},"columns":{`;
  for (const [index, [key, values]] of columns.entries()) {
    yield `${index > 0 ? "," : ""}${JSON.stringify(key)}:[`;
    for (let start = 0; start < values.length; start += VALUES_PER_PIECE) {
      const parts: string[] = [];
      const end = Math.min(start + VALUES_PER_PIECE, values.length);
      for (let i = start; i < end; i++) parts.push(Number.isFinite(values[i]) ? String(values[i]) : "null");
      yield (start > 0 ? "," : "") + parts.join(",");
    }
    yield "]";
  }
  const rest = JSON.stringify(tail);
  yield rest === "{}" ? "}}" : `},${rest.slice(1)}`;
}

interface Answer {
  /** Pieces taken by the connection so far: a reader that takes none for a grace period has stalled. */
  pieces: number;
  cut(reason: string): void;
}

/** The `/history` answers being sent. Internal. */
export class HistoryAnswers {
  #open = new Set<Answer>();
  #watching = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #encoder = new TextEncoder();

  /** After the run, readers stalled for `graceMs` are cut. */
  constructor(readonly graceMs: number) {}

  /** Answers being sent now. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * The streamed answer `{ ...page, ...tail }` (the caller checks `size`
   * against the limit first, before making the page). The page's columns
   * are copied now; `tail` is written as JSON when the last piece is made.
   */
  respond(page: Page, tail: object): Response {
    const columns: [string, Float64Array][] = Object.entries(page.columns)
      .map(([key, values]) => [key, Float64Array.from(values, (v) => v ?? NaN)]);
    // Only the copy is kept: the page's arrays (a JS value per event and key) are dropped now.
    const pieces = jsonPieces({ from: page.from, length: page.length }, columns, tail);
    const encoder = this.#encoder;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const answer: Answer = {
      pieces: 0,
      cut: (reason) => {
        this.#open.delete(answer);
        try {
          // An error, not a close: the runtime drops the connection, and the reader sees a cut answer.
          // (A string: Bun prints the reason of an errored body, and a stack would say nothing more.)
          controller.error(reason);
        } catch { /* already closed */ }
      },
    };
    this.#open.add(answer);
    if (this.#watching) this.#watch(); // an answer begun after the run ended is watched too
    const body = new ReadableStream<Uint8Array>({
      start: (c) => void (controller = c),
      pull: (c) => {
        const next = pieces.next();
        answer.pieces++;
        if (next.done) {
          this.#open.delete(answer);
          c.close();
        } else {
          c.enqueue(encoder.encode(next.value));
        }
      },
      cancel: () => void this.#open.delete(answer),
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "application/json", "cache-control": "no-store" } });
  }

  /**
   * From now on (the run has ended), cuts every answer whose reader takes
   * nothing for `graceMs`; one that keeps reading is never cut.
   */
  watchStalled(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.#watch();
  }

  /** One round of watching: each open answer must take a piece before the timer fires. */
  #watch(): void {
    if (this.#timer !== undefined || this.#open.size === 0) return;
    const seen = new Map([...this.#open].map((a) => [a, a.pieces]));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      for (const [answer, pieces] of seen) {
        if (this.#open.has(answer) && answer.pieces === pieces) {
          answer.cut(`dashboard: a /history reader took nothing for ${this.graceMs} ms after the run ended: cut`);
        }
      }
      this.#watch();
    }, this.graceMs);
    // The process may end while answers are watched: the timer must not keep it alive.
    (this.#timer as unknown as { unref?: () => void }).unref?.();
  }
}
