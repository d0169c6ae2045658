import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCsv } from "../mod.ts";
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
