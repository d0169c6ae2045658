// model.save("file://…") and tf.loadLayersModel("file://…") after useBackend(), on Deno and Bun: the files
// tfjs-node writes (model.json + weights.bin), read back exactly, tfjs-node's own files read too, and every
// error naming the path (src/checkpoint/file_scheme.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "./tf_helpers.ts"; // useBackend()

function folder(): string {
  return mkdtempSync(join(tmpdir(), "fitstream-save-"));
}

test("a model saved to file:// loads back with identical predictions", async () => {
  const dir = join(folder(), "model"); // created by the save
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 8, activation: "relu", inputShape: [3] }),
      tf.layers.dense({ units: 2, activation: "softmax" }),
    ],
  });
  const x = tf.randomUniform([5, 3], -1, 1, "float32", 4);
  const result = await model.save(`file://${dir}`);
  assert.equal(result.modelArtifactsInfo.modelTopologyType, "JSON");
  assert.deepEqual(readdirSync(dir).sort(), ["model.json", "weights.bin"]);
  const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
  assert.deepEqual(Object.keys(json), ["modelTopology", "weightsManifest", "format", "generatedBy", "convertedBy"]);
  assert.deepEqual(json.weightsManifest[0].paths, ["weights.bin"]);
  assert.equal(readFileSync(join(dir, "weights.bin")).byteLength, 4 * (3 * 8 + 8 + 8 * 2 + 2));

  const loaded = await tf.loadLayersModel(`file://${dir}/model.json`);
  const before = (model.predict(x) as tf.Tensor).arraySync();
  const after = (loaded.predict(x) as tf.Tensor).arraySync();
  assert.deepEqual(after, before);

  // Saving again over the same folder replaces both files, and leaves no temporary file behind.
  loaded.setWeights(loaded.getWeights().map((w) => tf.onesLike(w)));
  await loaded.save(`file://${dir}`);
  assert.deepEqual(readdirSync(dir).sort(), ["model.json", "weights.bin"]);
  const ones = await tf.loadLayersModel(`file://${dir}/model.json`);
  assert.deepEqual(ones.getWeights().map((w) => [...w.dataSync()].every((v) => v === 1)), [true, true, true, true]);
  tf.dispose([x, model, loaded, ones] as unknown as tf.Tensor[]);
});

/** A dense 2 -> 1 layer in tfjs-node's files, written by hand: kernel [[2], [3]], bias [1]. */
function writeTfjsNodeModel(dir: string, paths: string[] = ["./weights.bin"]): void {
  const topology = {
    class_name: "Sequential",
    config: {
      name: "sequential_hand",
      layers: [{
        class_name: "Dense",
        config: { units: 1, activation: "linear", use_bias: true, name: "out", batch_input_shape: [null, 2] },
      }],
    },
    keras_version: "tfjs-layers 4.22.0",
    backend: "tensor_flow.js",
  };
  const model = {
    modelTopology: topology,
    weightsManifest: [{
      paths,
      weights: [
        { name: "out/kernel", shape: [2, 1], dtype: "float32" },
        { name: "out/bias", shape: [1], dtype: "float32" },
      ],
    }],
    format: "layers-model",
    generatedBy: "TensorFlow.js tfjs-layers v4.22.0",
    convertedBy: null,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.json"), JSON.stringify(model));
  const bytes = new Uint8Array(new Float32Array([2, 3, 1]).buffer);
  if (paths.length === 1) writeFileSync(join(dir, paths[0]), bytes);
  else paths.forEach((p, i) => writeFileSync(join(dir, p), i === 0 ? bytes.subarray(0, 8) : bytes.subarray(8)));
}

test("a model in tfjs-node's files loads, its weights split over shards too", async () => {
  for (const paths of [["./weights.bin"], ["weights.bin"], ["group1-shard1of2.bin", "group1-shard2of2.bin"]]) {
    const dir = folder();
    writeTfjsNodeModel(dir, paths);
    const model = await tf.loadLayersModel(`file://${dir}/model.json`);
    const y = model.predict(tf.tensor2d([[1, 1], [2, -1]])) as tf.Tensor;
    assert.deepEqual(y.arraySync(), [[6], [2]], paths.join(","));
    tf.dispose([y, model] as unknown as tf.Tensor[]);
  }
});

test("file:// errors name the path", async () => {
  const dir = folder();
  await assert.rejects(tf.loadLayersModel(`file://${dir}/nothing/model.json`), {
    message: new RegExp(
      `^loading "file://${dir}/nothing/model.json": cannot read the model file "${dir}/nothing/model.json": `,
    ),
  });
  await assert.rejects(tf.loadLayersModel(`file://${dir}`), {
    message: `loading "file://${dir}": "${dir}" is a folder: name the model.json in it`,
  });

  writeTfjsNodeModel(join(dir, "short"));
  writeFileSync(join(dir, "short", "weights.bin"), new Uint8Array(8)); // one float short
  await assert.rejects(tf.loadLayersModel(`file://${dir}/short/model.json`), {
    message: `loading "file://${dir}/short/model.json": "${dir}/short/weights.bin" hold 8 bytes, the weightsManifest ` +
      `of "${dir}/short/model.json" describes 12: a weight file is truncated or belongs to another model`,
  });

  writeTfjsNodeModel(join(dir, "lost"), ["./weights.bin", "./gone.bin"]);
  rmSync(join(dir, "lost", "gone.bin"));
  await assert.rejects(tf.loadLayersModel(`file://${dir}/lost/model.json`), {
    message: new RegExp(
      `^loading "file://${dir}/lost/model.json": cannot read the weight file "${dir}/lost/gone.bin": `,
    ),
  });

  writeFileSync(join(dir, "bad.json"), "{ not json");
  await assert.rejects(tf.loadLayersModel(`file://${dir}/bad.json`), {
    message: new RegExp(`^loading "file://${dir}/bad.json": "${dir}/bad.json" is not JSON: `),
  });

  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
  writeFileSync(join(dir, "taken"), "a file");
  await assert.rejects(model.save(`file://${dir}/taken`), {
    message: `saving to "file://${dir}/taken": "${dir}/taken" is a file: name a folder (it is created if missing)`,
  });
  assert.equal(existsSync(join(dir, "taken", "model.json")), false);
  model.dispose();
});
