// Runs every TypeScript code block of the README, docs/ and the JSDoc of src/
// and mod.ts, on whichever runtime runs the tests, so the docs cannot rot.
//
// A line `console.log(expr); // value` becomes an assertion that `expr`
// deep-equals `value`; a comment there that is not a JS expression fails the
// block (a value the test cannot check would be a claim nobody verifies: put
// prose on a line of its own). A block whose fence is ```ts ignore is not run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const modUrl = pathToFileURL(join(root, "mod.ts")).href;
const coreUrl = pathToFileURL(join(root, "core.ts")).href;

interface Block {
  file: string;
  line: number;
  code: string;
}

async function listFiles(dir: string, ext: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, dir), { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await listFiles(path, ext));
    else if (entry.name.endsWith(ext)) out.push(path);
  }
  return out;
}

/** Extracts ```ts blocks; in .ts files only from JSDoc comments (` * ` prefixes stripped). */
function extractBlocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  const isTs = file.endsWith(".ts");
  let current: { line: number; code: string[] } | undefined;
  lines.forEach((raw, i) => {
    const line = isTs ? raw.replace(/^\s*\* ?/, "") : raw;
    if (isTs && !/^\s*\*/.test(raw)) return;
    if (!current) {
      if (/^```(ts|typescript)\s*$/.test(line.trim())) current = { line: i + 1, code: [] };
      return;
    }
    if (line.trim() === "```") {
      blocks.push({ file, line: current.line, code: current.code.join("\n") });
      current = undefined;
    } else {
      current.code.push(line);
    }
  });
  return blocks;
}

const AsyncFunction = (async () => {}).constructor as FunctionConstructor;

function isExpression(text: string): boolean {
  try {
    new AsyncFunction(`return (${text});`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Turns `console.log(x); // y` into an assertion and points imports at the
 * local mod.ts; throws on a value comment it cannot check.
 */
export function prepare(code: string): string {
  const body = code
    .replaceAll(/from\s+"@fitstream\/fitstream"/g, `from "${modUrl}"`)
    .replaceAll(/from\s+"@fitstream\/fitstream\/core"/g, `from "${coreUrl}"`)
    .split("\n")
    .map((line, i) => {
      const m = line.match(/^(\s*)console\.log\((.+)\);\s*\/\/\s*(.+)$/);
      if (!m && /console\.log\(.*\);?\s*\/\/\s*\S/.test(line)) {
        throw new SyntaxError(`line ${i + 1}: a console.log with a value comment must start its line: ${line.trim()}`);
      }
      if (!m) return line;
      // The printed expression may be TypeScript (the block runs as TypeScript); the comment must be a JS value.
      if (!isExpression(m[3])) {
        throw new SyntaxError(
          `line ${i + 1}: the comment after console.log cannot be checked: "${m[3]}" ` +
            "(write the printed value as a JS expression; put prose on a line of its own)",
        );
      }
      return `${m[1]}__assertDoc(${m[2]}, ${m[3]}, ${JSON.stringify(m[3])});`;
    })
    .join("\n");
  return `import { deepStrictEqual as __deq } from "node:assert/strict";
function __assertDoc(actual: unknown, expected: unknown, text: string) {
  __deq(JSON.parse(JSON.stringify(actual) ?? "null"), JSON.parse(JSON.stringify(expected) ?? "null"), "doc comment says " + text);
}
${body}
export {};
`;
}

const sources = ["README.md", ...await listFiles("docs", ".md"), "mod.ts", "core.ts", ...await listFiles("src", ".ts")];
const blocks: Block[] = [];
for (const file of sources) {
  const text = await readFile(join(root, file), "utf8").catch(() => "");
  blocks.push(...extractBlocks(file, text));
}

test("docs: there are code blocks to run", () => {
  assert.ok(blocks.length >= 10, `found only ${blocks.length} blocks`);
});

for (const block of blocks) {
  test(`docs: ${relative(".", block.file)}:${block.line}`, async () => {
    const dir = await mkdtemp(join(root, ".doctest-")); // inside the repo: bare imports resolve
    try {
      const path = join(dir, "block.ts");
      await writeFile(path, prepare(block.code));
      await import(pathToFileURL(path).href);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
}

test("docs: a wrong or uncheckable output comment fails the block", async () => {
  const dir = await mkdtemp(join(root, ".doctest-")); // inside the repo: bare imports resolve
  try {
    const path = join(dir, "wrong.ts");
    await writeFile(path, prepare("const x = [1, 2];\nconsole.log(x.length); // 3"));
    await assert.rejects(import(pathToFileURL(path).href), /doc comment says 3/);
    assert.throws(() => prepare("console.log(x.length); // 3 steps"), /cannot be checked: "3 steps"/);
    assert.throws(() => prepare("for (const x of xs) console.log(x); // 1, 2"), /must start its line/);
    const ok = join(dir, "right.ts");
    await writeFile(ok, prepare("console.log({ a: [1] }); // { a: [1] }"));
    await import(pathToFileURL(ok).href);
  } finally {
    await rm(dir, { recursive: true });
  }
});
