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

/**
 * A line splitter to feed text chunks by hand: `push` calls `onLine` for each
 * line a chunk completes, `end` for an unterminated last line. The start of
 * an unfinished line is kept as a list of pieces joined once its newline
 * arrives: appending to one string and splitting it again on every chunk
 * made a 32 MB line take 6.4 s (quadratic). A `\r` before the newline is
 * dropped. `pending()` says how long the unfinished line is so far, and
 * `drop()` forgets it (a reader that bounds its lines). Internal.
 */
export function lineSplitter(onLine: (text: string, terminated: boolean) => void): {
  push(chunk: string): void;
  end(): void;
  pending(): number;
  drop(): void;
} {
  let pieces: string[] = [];
  let pendingLength = 0;
  const emit = (text: string, terminated: boolean) =>
    onLine(terminated && text.endsWith("\r") ? text.slice(0, -1) : text, terminated);
  return {
    push(chunk) {
      const parts = chunk.split("\n");
      if (parts.length === 1) {
        pieces.push(chunk);
        pendingLength += chunk.length;
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
      if (rest !== "") emit(rest, false);
    },
    pending: () => pendingLength,
    drop() {
      pieces = [];
      pendingLength = 0;
    },
  };
}

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
