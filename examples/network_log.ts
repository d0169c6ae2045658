/**
 * Streaming the events to a network destination: `jsonlSink` writes into the
 * body of a streaming `fetch` POST. To stay self-contained (and offline), the
 * example starts its own collector on 127.0.0.1; point `--url` elsewhere to
 * send the log to your own service.
 *
 *   deno run -A examples/network_log.ts [--epochs N] [--url http://host:port/path]
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { augment, epochStream, jsonlSink, pipe, take, useBackend, validationLoss } from "../mod.ts";
import { housingModel, loadHousing } from "./housing_data.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { epochs: { type: "string", default: "5" }, url: { type: "string" } },
});

// A collector that prints each line as it arrives.
let received = 0;
const server = createServer((req, res) => {
  let pending = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const event = JSON.parse(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      received++;
      console.log(`collector got step ${event.step}: val_loss=${event.val_loss.toFixed(4)}`);
    }
  });
  req.on("end", () => res.end(`${received} events\n`));
});
let url = values.url;
if (!url) {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/runs`;
}

await useBackend();
const data = await loadHousing();
const loss = tf.losses.meanSquaredError;
const body = new TransformStream<Uint8Array, Uint8Array>();
const response = fetch(url, {
  method: "POST",
  body: body.readable,
  headers: { "content-type": "application/x-ndjson" },
  duplex: "half",
} as RequestInit);

await pipe(
  epochStream({
    data: [data.xTrain, data.yTrain],
    model: housingModel(8),
    optimizer: tf.train.adam(1e-2),
    loss,
    batchSize: 512,
  }),
  augment(validationLoss({ data: [data.xVal, data.yVal], loss })),
  take(Number(values.epochs)),
).pipeTo(jsonlSink(body.writable));
console.log(`server answered: ${(await (await response).text()).trim()}`);
server.close();
