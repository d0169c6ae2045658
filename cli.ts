/**
 * fitstream's command line: chart a run's JSONL log, or compare many runs live.
 *
 *   deno run -A cli.ts plot run.jsonl -o run.svg [--keys train_loss,val_loss] [--log]
 *   deno run -A cli.ts serve runs/ other.jsonl [--port 8080] [--host 127.0.0.1]
 *   deno run -A cli.ts serve --collect runs/ --token T [--port 8080]
 *
 * (`bun cli.ts …` works the same.) It runs only as a program: importing it
 * (`@fitstream/fitstream/cli`) runs nothing and gives {@link main}.
 *
 * @module
 */
import process from "node:process";
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { fromJsonl, plotSvg, serveRuns } from "./mod.ts";

const HELP = `fitstream: chart a run's JSONL log, or compare runs on a live page

Usage:
  cli.ts plot <run.jsonl> -o <run.svg> [--keys k1,k2] [--log] [--title T]
  cli.ts serve <folder or run.jsonl>... [--port N] [--host H]
      every run overlaid, one colour each; growing logs and new files in a folder are followed
  cli.ts serve --collect <dir> [--token T] [<folder or run.jsonl>...] [--port N] [--host H]
               [--idle-timeout MS]
      also accept runs from httpSink: POST /runs/<name> with Authorization: Bearer <T>,
      stored as <dir>/<name>.jsonl (the token may come from FITSTREAM_TOKEN instead);
      an upload silent for MS milliseconds (default 10000) is cut, its complete lines kept
Ctrl-C stops the server; a second Ctrl-C exits at once.
`;

/**
 * Runs the command line on `argv` (the arguments after the program's name)
 * and resolves to the exit status; a bad command or file rejects with the
 * reason.
 */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      keys: { type: "string" },
      log: { type: "boolean", default: false },
      title: { type: "string" },
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      collect: { type: "string" },
      token: { type: "string" },
      "idle-timeout": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, source, ...more] = positionals;
  if (values.help || !command) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (!source && !(command === "serve" && values.collect)) throw new Error(`${command}: name the JSONL log to read`);
  if (command === "plot") {
    if (!values.out) throw new Error("plot: name the SVG to write with -o <file>");
    const keys = values.keys?.split(",").map((k) => k.trim()).filter((k) => k !== "");
    // A log whose writer was killed mid-line still plots: the cut-off last line is left out.
    await fromJsonl(source, { partialLastLine: "skip" }).pipeTo(
      plotSvg(values.out, { keys, logY: values.log, title: values.title }),
    );
    console.log(`wrote ${values.out}`);
    return 0;
  }
  if (command === "serve") {
    const sources = source ? [source, ...more] : [];
    for (const path of sources) {
      if (!statSync(path, { throwIfNoEntry: false })) throw new Error(`serve: "${path}" is not a file or a folder`);
    }
    const token = values.token ?? process.env.FITSTREAM_TOKEN;
    if (values.collect && !token) throw new Error("serve: --collect needs --token <T> (or FITSTREAM_TOKEN)");
    const port = Number(values.port);
    const idle = values["idle-timeout"];
    if (idle !== undefined && !values.collect) throw new Error("serve: --idle-timeout applies to --collect only");
    const idleTimeout = idle === undefined ? undefined : Number(idle);
    const server = await serveRuns({
      sources,
      port,
      host: values.host,
      collect: values.collect
        ? { dir: values.collect, token: token!, ...(idleTimeout === undefined ? {} : { idleTimeout }) }
        : undefined,
    });
    console.log(
      `serving ${sources.length ? sources.join(", ") : ""}${
        values.collect ? ` collecting into ${values.collect}` : ""
      } at ${server.url}`,
    );
    let stopping = false;
    const stopped = new Promise<void>((resolve) => {
      for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.on(name, () => {
          if (stopping) process.exit(130); // a second Ctrl-C does not wait for slow pages
          stopping = true;
          void server.close().then(resolve);
        });
      }
    });
    await stopped;
    return 0;
  }
  throw new Error(`unknown command "${command}" (use plot or serve)`);
}

// Only as a program: a module that imports this one (the package's ./cli export) must not start a server.
if (import.meta.main) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    console.error(`fitstream: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
