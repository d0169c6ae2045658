// The npm package as a stranger gets it: `npm pack` of this repository (its prepack builds JavaScript and
// .d.ts into dist/: pack/build.ts), installed into a fresh project outside the repository beside tfjs from
// npm, then imported by name and trained with on Bun and on Deno, with no warning printed and one copy of
// tfjs-core in the project. One test does it all: the install (~300 MB of tfjs unpacked from npm's cache,
// `--prefer-offline`) is the slow part, done once for both runtimes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { root } from "./spawn.ts";

/** What `npm pack` needs of the repository: the package's files and what builds them. */
const PACKAGE_INPUTS = ["package.json", "README.md", "LICENSE", "mod.ts", "core.ts", "cli.ts", "src", "pack"];

const bin = (name: string) => join(root, "node_modules", ".bin", name);

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end. `limitMs` only bounds a hung command (npm waiting on a lock, say): it is
 * minutes, far above what any step takes on a loaded machine, and no assertion depends on it.
 */
function exec(command: string, args: string[], cwd: string, limitMs = 300_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NO_COLOR: "1", PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}` };
    const child = spawn(command, args, { cwd, env });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${limitMs} ms)`;
      child.kill("SIGKILL");
    }, limitMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function succeeded(what: string, ran: Ran): void {
  assert.equal(ran.code, 0, `${what} failed:\n${ran.stdout}\n${ran.stderr}`);
}

/**
 * The stranger's script: imports the three exports by name, trains a softmax classifier with
 * categoricalCrossentropy (on the host engine) for two epochs, and tries two mistakes: a misspelt option key and NaN
 * validation data, each refused when built.
 */
const SCRIPT = `import * as tf from "@tensorflow/tfjs";
import {
  categoricalCrossentropy,
  collect,
  earlyStop,
  epochStream,
  explainEngine,
  take,
  useBackend,
  validationLoss,
} from "@fitstream/fitstream";
import { pipe } from "@fitstream/fitstream/core";
import { main } from "@fitstream/fitstream/cli";

const backend = await useBackend();
const x = tf.randomUniform([48, 2], -1, 1, "float32", 1);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: 48 }, (_, i) => i % 3), "int32"), 3).toFloat();
const model = tf.sequential({
  layers: [
    tf.layers.dense({ units: 8, activation: "relu", inputShape: [2] }),
    tf.layers.dense({ units: 3, activation: "softmax" }),
  ],
});
const options = { data: [x, y], model, optimizer: tf.train.adam(0.1), loss: categoricalCrossentropy, batchSize: 8, seed: 1 };
const engine = explainEngine(options).engine;
const rows = await collect(pipe(epochStream(options), take(2)));
const refused = (f: () => unknown): string => {
  try {
    f();
    return "accepted";
  } catch (error) {
    return (error as Error).message;
  }
};
// The misspelling a Python user would make (the compiler refuses it too, hence the cast).
const misspelt = refused(() => earlyStop({ key: "val_loss", min_delta: 0.1 } as never));
const nan = refused(() => validationLoss({ data: [tf.tensor2d([[NaN, 1]]), tf.tensor2d([[1, 0, 0]])], loss: categoricalCrossentropy }));
console.log(JSON.stringify({
  backend,
  engine,
  steps: rows.map((r) => r.step),
  cli: typeof main,
  misspelt: /did you mean "minDelta"/.test(misspelt),
  nan: /validationLoss/.test(nan) && /NaN/.test(nan),
}));
`;

const EXPECTED = JSON.stringify({
  backend: "wasm",
  engine: "host",
  steps: [1, 2],
  cli: "function",
  misspelt: true,
  nan: true,
}) + "\n";

/** A script whose own error must reach stderr with its message and file, and exit status 1. */
const THROWS = `import { useBackend } from "@fitstream/fitstream";

await useBackend();
function strangersMistake() {
  throw new Error("the stranger's own mistake");
}
strangersMistake();
`;

// Registered under `deno test` only: the test itself runs the script on both runtimes, and its install takes most of a
// minute, so the suite's second pass (under `bun test`) would only repeat it.
const underBun = "Bun" in globalThis;

if (!underBun) {
  test("npm pack, installed in a fresh project with tfjs, imports by name and trains on Bun and Deno", {
    timeout: 900_000,
  }, async () => {
    const work = mkdtempSync(join(tmpdir(), "fitstream-package-"));
    try {
      // npm pack runs in a copy: its prepack rewrites dist/, which another run in this checkout may be reading.
      const source = join(work, "source");
      for (const name of PACKAGE_INPUTS) cpSync(join(root, name), join(source, name), { recursive: true });
      symlinkSync(join(root, "node_modules"), join(source, "node_modules"), "dir"); // tsc, deno for the build
      const packed = await exec("npm", ["pack", "--json", "--pack-destination", work], source);
      succeeded("npm pack", packed);
      const [{ filename, files }] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
      const shipped = files.map((f) => f.path);
      for (const path of ["dist/mod.js", "dist/mod.d.ts", "dist/core.js", "dist/cli.js", "package.json"]) {
        assert.ok(shipped.includes(path), `${path} is not in the tarball`);
      }
      assert.deepEqual(shipped.filter((p) => p.endsWith(".ts") && !p.endsWith(".d.ts")), [], "TypeScript sources");

      const project = join(work, "project");
      cpSync(join(root, "LICENSE"), join(project, "LICENSE")); // makes the folder
      writeFileSync(
        join(project, "package.json"),
        // tfjs's core-js asks to run an install script (a banner); declined as in this repository.
        JSON.stringify({ name: "stranger", private: true, type: "module", allowScripts: { "core-js": false } }),
      );
      writeFileSync(join(project, "train.ts"), SCRIPT);
      writeFileSync(join(project, "throws.ts"), THROWS);
      const tfjs = ["@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0"];
      const installed = await exec(
        "npm",
        ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, filename), ...tfjs],
        project,
      );
      succeeded("npm install", installed);

      const cores = await exec("npm", ["ls", "--all", "--parseable", "@tensorflow/tfjs-core"], project);
      succeeded("npm ls", cores);
      assert.deepEqual(cores.stdout.trim().split("\n"), [join(project, "node_modules", "@tensorflow", "tfjs-core")]);

      const onBun = await exec(bin("bun"), ["train.ts"], project);
      assert.equal(onBun.stderr, "", "Bun printed to stderr");
      succeeded("bun train.ts", onBun);
      assert.equal(onBun.stdout, EXPECTED);

      // Deno resolves the names through the project's package.json and node_modules, as a Node project does.
      const onDeno = await exec(bin("deno"), ["run", "-A", "train.ts"], project);
      assert.equal(onDeno.stderr, "", "Deno printed to stderr");
      succeeded("deno run", onDeno);
      assert.equal(onDeno.stdout, EXPECTED);
      // A user's uncaught error is the user's on both runtimes: message, file, status 1.
      for (
        const [name, ran] of [
          ["bun", await exec(bin("bun"), ["throws.ts"], project)],
          ["deno", await exec(bin("deno"), ["run", "-A", "throws.ts"], project)],
        ] as const
      ) {
        assert.equal(ran.code, 1, `${name}: exit status\n${ran.stderr}`);
        assert.match(ran.stderr, /the stranger's own mistake/, name);
        assert.match(ran.stderr, /throws\.ts/, name);
      }
      // The .d.ts files type the script: a wrong specifier in them would fail here.
      const checked = await exec(bin("deno"), ["check", "train.ts"], project);
      succeeded("deno check", checked);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}
