/**
 * The CSV seam: text in, records (with line numbers) out. It wraps
 * `csv-parse`'s WHATWG `TransformStream`, which parses bytes, so the text is
 * re-encoded on the way in. Swapping to `@std/csv`'s `CsvParseStream` (which
 * takes text) is a change to this file alone.
 *
 * @module
 */
import { parse } from "csv-parse/stream";

/** One parsed record and the line it ends on (1-based). */
export interface CsvRecord {
  fields: string[];
  line: number;
}

/** A stream that turns CSV text into records, tolerant of a BOM, CRLF and ragged rows. Internal. */
export function csvRecords(): TransformStream<string, CsvRecord> {
  const parser = parse({ bom: true, info: true, relax_column_count: true, skip_empty_lines: true }) as TransformStream<
    string,
    { record: string[]; info: { lines: number } }
  >;
  const toRecord = new TransformStream<{ record: string[]; info: { lines: number } }, CsvRecord>({
    transform: ({ record, info }, controller) => controller.enqueue({ fields: record, line: info.lines }),
  });
  const bytes = new TextEncoderStream();
  return {
    writable: bytes.writable,
    readable: bytes.readable.pipeThrough(parser as unknown as TransformStream<Uint8Array, never>).pipeThrough(toRecord),
  } as TransformStream<string, CsvRecord>;
}
