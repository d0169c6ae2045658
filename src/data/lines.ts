/**
 * Splitting decoded text into lines, in time linear in the text however long
 * its lines are. Shared by `fromJsonl` and `csvDataset`.
 *
 * @module
 */

/** One line of text, and whether a newline ended it. */
export interface Line {
  text: string;
  terminated: boolean;
}

/** Options of {@link lineSplitter}. */
export interface LineSplitterOptions {
  /**
   * A lone `\r` ends a line too (old Mac line ends), as in CSV. Off for JSON
   * lines, where a raw `\r` between tokens is whitespace inside one line.
   */
  loneCr?: boolean;
}

/**
 * A line splitter to feed text chunks by hand: `push` calls `onLine` for each
 * line a chunk completes, `end` for an unterminated last line. The start of
 * an unfinished line is kept as a list of pieces joined once its newline
 * arrives: appending to one string and splitting it again on every chunk
 * made a 32 MB line take 6.4 s (quadratic). A `\r` before the newline is
 * dropped. `pending()` says how long the unfinished line is so far, and
 * `drop()` forgets it (a reader that bounds its lines). Internal.
 */
export function lineSplitter(
  onLine: (text: string, terminated: boolean) => void,
  options: LineSplitterOptions = {},
): {
  push(chunk: string): void;
  end(): void;
  pending(): number;
  drop(): void;
} {
  const { loneCr = false } = options;
  let pieces: string[] = [];
  let pendingLength = 0;
  let heldCr = false; // a chunk ended with \r: whether a \n follows is up to the next chunk
  const emit = (text: string, terminated: boolean) =>
    onLine(terminated && text.endsWith("\r") ? text.slice(0, -1) : text, terminated);
  const split = (chunk: string): string[] => {
    if (!loneCr) return chunk.split("\n");
    if (heldCr) chunk = "\r" + chunk;
    heldCr = chunk.endsWith("\r");
    if (heldCr) chunk = chunk.slice(0, -1);
    // The regex split only where a lone \r is: CRLF text splits on \n as fast as LF text.
    return chunk.includes("\r") && LONE_CR.test(chunk) ? chunk.split(ANY_LINE_END) : chunk.split("\n");
  };
  return {
    push(chunk) {
      const parts = split(chunk);
      if (parts.length === 1) {
        pieces.push(parts[0]);
        pendingLength += parts[0].length;
        return;
      }
      pieces.push(parts[0]);
      emit(pieces.length === 1 ? pieces[0] : pieces.join(""), true);
      for (let i = 1; i < parts.length - 1; i++) emit(parts[i], true);
      pieces = [parts[parts.length - 1]];
      pendingLength = pieces[0].length;
    },
    end() {
      const rest = pieces.join("");
      pieces = [];
      pendingLength = 0;
      if (heldCr) emit(rest, true);
      else if (rest !== "") emit(rest, false);
      heldCr = false;
    },
    pending: () => pendingLength,
    drop() {
      pieces = [];
      pendingLength = 0;
      heldCr = false;
    },
  };
}

const LONE_CR = /\r(?!\n)/;
const ANY_LINE_END = /\r\n?|\n/;

/** Text chunks to a stream of lines (see {@link lineSplitter}). Internal. */
export function splitLines(): TransformStream<string, Line> {
  let controller!: TransformStreamDefaultController<Line>;
  const splitter = lineSplitter((text, terminated) => controller.enqueue({ text, terminated }));
  return new TransformStream({
    start(c) {
      controller = c;
    },
    transform(chunk) {
      splitter.push(chunk);
    },
    flush() {
      splitter.end();
    },
  });
}
