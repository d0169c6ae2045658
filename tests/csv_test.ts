import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { csvDataset, loadCsv } from "../mod.ts";
import { withTempDir } from "./helpers.ts";
import "./tf_helpers.ts";

const streamOf = (text: string) => new Blob([text]).stream();

test("loadCsv: quoted header, CRLF, trailing newline and a UTF-8 BOM all parse", async () => {
  const variants = [
    '"a","b"\n1,2\n3,4\n',
    "a,b\r\n1,2\r\n3,4\r\n",
    "a,b\n1,2\n3,4",
    "\uFEFFa,b\n1,2\n3,4\n",
    '\uFEFF"a","b"\r\n"1",2\r\n3,"4"\r\n',
  ];
  for (const text of variants) {
    const table = await loadCsv(streamOf(text));
    assert.deepEqual(table.columns, ["a", "b"], JSON.stringify(text));
    assert.equal(table.rows, 2);
    assert.deepEqual(Array.from(table.column("a")), [1, 3]);
    assert.deepEqual(Array.from(table.column("b")), [2, 4]);
  }
});

test("loadCsv: selected columns, a tensor of them, and the housing file's shape", async () => {
  const table = await loadCsv(streamOf("a,b,c\n1,2,3\n4,5,6\n"), { columns: ["c", "a"] });
  assert.deepEqual(table.columns, ["c", "a"]);
  const t = table.tensor(["a", "c"]);
  assert.deepEqual(t.shape, [2, 2]);
  assert.deepEqual(t.arraySync(), [[1, 3], [4, 6]]);
  t.dispose();
  assert.throws(() => table.column("b"), /CsvTable: no column "b"/);
  const housing = await loadCsv(new URL("../examples/data/california_housing_test.csv", import.meta.url));
  assert.equal(housing.rows, 3000);
  assert.equal(housing.columns.length, 9);
  assert.ok(housing.columns.includes("median_house_value"));
});

test("loadCsv: a missing column names the column and lists the header", async () => {
  await assert.rejects(loadCsv(streamOf("a,b\n1,2\n"), { columns: ["a", "price"] }), {
    name: "RangeError",
    message: 'loadCsv: stream: column "price" is not in the header (a, b)',
  });
});

test("loadCsv: a non-numeric cell names the line and the column", async () => {
  await assert.rejects(loadCsv(streamOf("a,b\n1,2\n3,x7\n")), {
    name: "RangeError",
    message: 'loadCsv: stream: line 3, column "b": "x7" is not a number',
  });
  await assert.rejects(loadCsv(streamOf("a,b\r\n1,2\r\n,4\r\n")), {
    message: 'loadCsv: stream: line 3, column "a": "" is not a number',
  });
});

test("loadCsv: a ragged row names the line", async () => {
  await assert.rejects(loadCsv(streamOf("a,b\n1,2\n3,4,5\n6,7\n")), {
    name: "RangeError",
    message: "loadCsv: stream: line 3 has 3 fields, the header has 2",
  });
  await assert.rejects(loadCsv(streamOf("a,b\n1\n")), {
    message: "loadCsv: stream: line 2 has 1 fields, the header has 2",
  });
});

test("loadCsv: empty input, a missing file and bad arguments", async () => {
  await assert.rejects(loadCsv(streamOf("")), /loadCsv: stream is empty: expected a header line/);
  const dir = await mkdtemp(join(tmpdir(), "fitstream-csv-"));
  try {
    const missing = join(dir, "nope.csv");
    await assert.rejects(loadCsv(missing), (e: Error) => e.message.startsWith(`loadCsv: cannot read ${missing}`));
    const path = join(dir, "ok.csv");
    await writeFile(path, "x\n1.5\n-2e3\n");
    assert.deepEqual(Array.from((await loadCsv(path)).column("x")), [1.5, -2000]);
  } finally {
    await rm(dir, { recursive: true });
  }
  // @ts-expect-error: a number is no source
  await assert.rejects(loadCsv(42), {
    name: "TypeError",
    message: /loadCsv: source must be a URL, a file path or a ReadableStream/,
  });
  // @ts-expect-error: columns is a list
  await assert.rejects(loadCsv(streamOf("a\n1\n"), { columns: "a" }), {
    name: "TypeError",
    message: /loadCsv: columns must be an array/,
  });
});

test("loadCsv: reads a URL from a local HTTP server; a 404 is a clear error", async () => {
  const server = createServer((req, res) => {
    if (req.url === "/data.csv") res.end('"p","q"\r\n1,2\r\n');
    else {
      res.statusCode = 404;
      res.end("missing");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  try {
    const table = await loadCsv(`http://127.0.0.1:${port}/data.csv`);
    assert.deepEqual(Array.from(table.column("q")), [2]);
    await assert.rejects(loadCsv(`http://127.0.0.1:${port}/other.csv`), {
      message: `loadCsv: cannot fetch http://127.0.0.1:${port}/other.csv: HTTP 404 Not Found`,
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

/** What a loader made of a CSV file: its rows of values, or its error with the loader's name cut off. */
type Outcome = { rows: number[][] } | { error: string };

async function viaLoadCsv(path: string): Promise<Outcome> {
  try {
    const table = await loadCsv(path);
    const t = table.tensor(table.columns);
    const rows = t.arraySync();
    t.dispose();
    return { rows };
  } catch (error) {
    return { error: (error as Error).message.replace(/^loadCsv: /, "") };
  }
}

async function viaCsvDataset(path: string): Promise<Outcome> {
  try {
    const rows: number[][] = [];
    const iterator = await csvDataset(path, { batchSize: 3 }).iterator();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      rows.push(...next.value.xs.arraySync());
      tf.dispose(next.value.xs);
    }
    return { rows };
  } catch (error) {
    return { error: (error as Error).message.replace(/^csvDataset: /, "") };
  }
}

test("loadCsv and csvDataset read the same adversarial CSVs to the same values or fail with the same error", async () => {
  // [file content, what both must make of it: rows, or the end of the error after "<file>: "]
  const cases: [string, number[][] | string][] = [
    [
      "a,b\n1e39,1\n",
      `line 2, column "a": "1e39" is beyond float32's range (±3.4028235e38): it would read as Infinity`,
    ],
    [
      "a,b\n1,-3.5e38\n",
      `line 2, column "b": "-3.5e38" is beyond float32's range (±3.4028235e38): it would read as Infinity`,
    ],
    ["a,b\n1e-50,1\n", `line 2, column "a": "1e-50" is too close to 0 for float32 (under ~7e-46): it would read as 0`],
    [
      "a,b\n0x10,1\n",
      `line 2, column "a": "0x10" is not a decimal number (hexadecimal, binary and octal numbers are refused)`,
    ],
    [
      "a,b\n1,0b11\n",
      `line 2, column "b": "0b11" is not a decimal number (hexadecimal, binary and octal numbers are refused)`,
    ],
    [
      "a,b\n1, 0o7\n",
      `line 2, column "b": " 0o7" is not a decimal number (hexadecimal, binary and octal numbers are refused)`,
    ],
    [
      'a,b\n1,"-0X1F"\n',
      `line 2, column "b": "-0X1F" is not a decimal number (hexadecimal, binary and octal numbers are refused)`,
    ],
    ["a,b\n1,Infinity\n", `line 2, column "b": "Infinity" is not a number`],
    ["a,b\n1,1_000\n", `line 2, column "b": "1_000" is not a number`],
    ["a,b\n3.4028235e38,1e-45\n0e-99,-0.5e1\n", [[3.4028234663852886e38, 1.401298464324817e-45], [0, -5]]],
    ["a,b\r1,2\r3,4\r", [[1, 2], [3, 4]]], // CR-only line ends
    ["a,b\r\n1,2\n3,4\r5,6", [[1, 2], [3, 4], [5, 6]]], // mixed
    ["a,b\n1,2\n\n\r\n3,4\n", [[1, 2], [3, 4]]], // empty lines are skipped
    ["a,b\n1,2\n   \n3,4\n", "line 3 has 1 fields, the header has 2"], // a line of spaces is a row
    ["a\n1\n\t\n2\n", `line 3, column "a": "\\t" is not a number`],
    ['\uFEFF"a","b"\n"1", 2 \n', [[1, 2]]],
    ['a,b\n1,"2\n3",4\n', "line 2, field 2: a quoted field does not close on its line"],
    ['a,b\n1,"2"x\n', "line 2, field 2: text follows the closing quote of a quoted field"],
    ["a,b\n1,2\n3\n", "line 3 has 1 fields, the header has 2"],
    ["a, a\n1,2\n", `the header names column "a" twice (line 1)`],
    ["\n\n", "is empty: expected a header line"],
  ];
  await withTempDir(async (dir) => {
    const path = join(dir, "case.csv");
    for (const [content, expected] of cases) {
      writeFileSync(path, content);
      const [fromTable, fromDataset] = [await viaLoadCsv(path), await viaCsvDataset(path)];
      assert.deepEqual(fromDataset, fromTable, `the loaders differ on ${JSON.stringify(content)}`);
      if (typeof expected === "string") {
        const message = "error" in fromTable ? fromTable.error : `read ${JSON.stringify(fromTable.rows)}`;
        const wanted = expected.startsWith("is empty") ? `${path} ${expected}` : `${path}: ${expected}`;
        assert.equal(message, wanted, JSON.stringify(content));
      } else {
        assert.deepEqual(fromTable, { rows: expected }, JSON.stringify(content));
      }
    }
  });
});
