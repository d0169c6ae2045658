/**
 * Builds what the npm package ships (`npm pack` runs it as `prepack`): the
 * library as JavaScript and `.d.ts` in `dist/`, from the TypeScript sources
 * the repository runs on.
 *
 * Why not ship the `.ts` sources: Deno refuses TypeScript inside
 * `node_modules` (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so a Deno
 * project that installs the package from npm could not import it. Bun would
 * take either; JavaScript serves both.
 *
 * `tsc` (the `typescript` dev dependency, 7: the native compiler emits this
 * package in ~2 s, where 6.0's took ~8 s) only emits here (`--noCheck`): the
 * repository's type check is `deno check`, whose DOM typings differ from
 * TypeScript's in places (TextDecoderStream's writable side). tsc rewrites the
 * `.ts` extensions of relative imports in the JavaScript it emits; this
 * script rewrites those tsc leaves alone: in the `.d.ts` files (a `.ts`
 * specifier there would send Deno looking for a source that is not shipped)
 * and in `new URL("./x.ts", import.meta.url)` (the SIMD kernels' worker).
 * Then it checks that every relative specifier in `dist/` names a file that
 * exists, so a missed case fails the pack rather than a user's import.
 *
 *   deno run -A pack/build.ts [outDir]   (default: dist)
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The package's three exports. */
const EXPORTS = ["mod.ts", "core.ts", "cli.ts"];

/** A module started by URL rather than imported (a worker): tsc would not find it from the exports. */
const STARTED_BY_URL = /new URL\(\s*["'](\.\.?\/[^"']+\.ts)["']\s*,\s*import\.meta\.url\s*\)/g;

/** A relative specifier in an import, export, `import()` or `new URL(…, import.meta.url)`. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bnew URL\(\s*)(["'])(\.\.?\/[^"']+)\2/g;

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}

/** The exports and every module a source under src/ starts by URL (the SIMD kernels' helper worker). */
function entries(): string[] {
  const started = listFiles(join(root, "src"))
    .filter((path) => path.endsWith(".ts"))
    .flatMap((path) =>
      [...readFileSync(path, "utf8").matchAll(STARTED_BY_URL)].map((m) => resolve(dirname(path), m[1]))
    );
  return [...EXPORTS.map((entry) => join(root, entry)), ...new Set(started)];
}

function compile(outDir: string): void {
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) throw new Error(`pack/build: ${tsc} is missing: run "npm install" first`);
  const args = [
    tsc,
    ...entries(),
    ...["--outDir", outDir, "--rootDir", root],
    ...["--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext"],
    ...["--lib", "ES2023,DOM,DOM.Iterable,DOM.AsyncIterable", "--types", "node"],
    ...["--strict", "--skipLibCheck", "--noCheck", "--declaration"],
    ...["--allowImportingTsExtensions", "--rewriteRelativeImportExtensions"],
  ];
  // tsc is a Node program; under Deno or Bun, process.execPath would be that runtime, so ask for node.
  const result = spawnSync("node", args, { cwd: root, stdio: "inherit" });
  if (result.error) throw new Error(`pack/build: could not run tsc: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`pack/build: tsc exited with status ${result.status}`);
}

/** Rewrites `.ts` to `.js` in the relative specifiers of one emitted file; returns the specifiers left. */
function rewrite(path: string): string[] {
  const text = readFileSync(path, "utf8");
  const specifiers: string[] = [];
  const out = text.replace(SPECIFIER, (_all, head: string, quote: string, spec: string) => {
    const fixed = spec.replace(/\.ts$/, ".js");
    specifiers.push(fixed);
    return `${head}${quote}${fixed}${quote}`;
  });
  if (out !== text) writeFileSync(path, out);
  return specifiers;
}

/** Builds the package into `outDir` (relative to the repository root). */
export function build(outDir = "dist"): void {
  const out = resolve(root, outDir);
  if (resolve(root).startsWith(out)) throw new Error(`pack/build: outDir must be a folder of its own, got "${outDir}"`);
  rmSync(out, { recursive: true, force: true }); // no file of an earlier build may ship
  compile(out);
  const missing: string[] = [];
  for (const path of listFiles(out)) {
    if (!path.endsWith(".js") && !path.endsWith(".d.ts")) continue;
    for (const spec of rewrite(path)) {
      // A .d.ts may name a module by its .js path; its types then sit in the .d.ts beside it.
      const target = resolve(dirname(path), spec);
      const typesOf = target.replace(/\.js$/, ".d.ts");
      if (!existsSync(target) && !(path.endsWith(".d.ts") && existsSync(typesOf))) missing.push(`${path}: ${spec}`);
    }
  }
  if (missing.length) throw new Error(`pack/build: specifiers naming no built file:\n  ${missing.join("\n  ")}`);
}

if (import.meta.main) {
  try {
    build(process.argv[2]);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
