/**
 * The layer kinds the host engine trains, by tfjs class name: one line a
 * kind (see `kind.ts`).
 *
 * @module
 */
import type { LayerKind } from "./kind.ts";
import { denseKind } from "./dense.ts";
import { dropoutKind } from "./dropout.ts";
import { batchNormalizationKind } from "./batch_normalization.ts";
import { embeddingKind } from "./embedding.ts";
import { globalAveragePooling1dKind } from "./global_average_pooling1d.ts";
import { flattenKind } from "./flatten.ts";
import { lstmKind } from "./lstm.ts";

/** Every kind, keyed by the tfjs class name it mirrors. */
export const LAYER_KINDS: ReadonlyMap<string, LayerKind> = new Map(
  [
    denseKind,
    dropoutKind,
    batchNormalizationKind,
    embeddingKind,
    globalAveragePooling1dKind,
    flattenKind,
    lstmKind,
  ].map((kind) => [kind.className, kind]),
);
