import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AdamOptimizer, type AdamOptions, type AdamState } from './adam-optimizer';
import { registerPyTorchBatchNorm } from './pytorch-batch-norm';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

function toArrayBuffer(data: tf.io.WeightData): ArrayBuffer {
  return tf.io.CompositeArrayBuffer.join(data);
}

/** A view of a Node Buffer as its own ArrayBuffer (Buffers may share a larger pool). */
function bufferToArrayBuffer(buffer: Buffer): ArrayBuffer {
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
}

/** Writes a file atomically: a temporary file in the same folder, then a rename over the target. */
async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * An fs-based tf.io handler writing the same files as tfjs-node's `file://` handler
 * (model.json + one weights.bin), so no native addon is needed. Each file is written atomically
 * (temporary file + rename), weights first; `saveModel` goes further and makes the whole folder
 * (model and optimiser state together) appear at once.
 */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileSystemHandler: binary model topologies are not supported (expected a layers model)');
      }
      const weightData = artifacts.weightData ? toArrayBuffer(artifacts.weightData) : new ArrayBuffer(0);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      await mkdir(dir, { recursive: true });
      // Weights first, so a model.json never appears without a weights.bin; replacing a model in place
      // is atomic per file only (saveModel is atomic for the whole folder).
      await writeFileAtomic(join(dir, WEIGHTS_BIN), new Uint8Array(weightData));
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, MODEL_JSON);
      let modelJson: tf.io.ModelJSON;
      try {
        modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (error) {
        throw new Error(`loadModel: cannot read ${jsonPath}: ${(error as Error).message}`);
      }
      if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
        throw new Error(`loadModel: ${jsonPath} must hold modelTopology and weightsManifest`);
      }
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      for (const group of modelJson.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) buffers.push(bufferToArrayBuffer(await readFile(join(dir, path))));
      }
      return tf.io.getModelArtifactsForJSON(modelJson, async () => [weightSpecs, tf.io.CompositeArrayBuffer.join(buffers)]);
    },
  };
}

/** What `saveModel` can take: a layers model or anything holding one (AngleClassifier, AngleRanker). */
export type SavableModel = tfl.LayersModel | { model: tfl.LayersModel };

/**
 * Saves a model (topology + all weights, batch-norm statistics included) to `dir`, and
 * optionally the optimiser's state (optimizer.json + optimizer.bin). The folder is assembled
 * next to `dir` under a temporary name and renamed into place, so `dir` never holds a
 * half-written or mixed checkpoint; a failed save leaves an existing `dir` untouched. An existing
 * `dir` is replaced by two renames (POSIX cannot rename over a non-empty folder): a crash between
 * them leaves the previous checkpoint complete at `.<name>.old-*` beside `dir`.
 */
export async function saveModel(model: SavableModel, dir: string, options: { optimizerState?: AdamOptimizer } = {}): Promise<void> {
  const layersModel = model instanceof tfl.LayersModel ? model : model.model;
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(parent, `.${basename(dir)}.tmp-${suffix}`);
  try {
    await layersModel.save(fileSystemHandler(temp));
    if (options.optimizerState) {
      const optimizer = options.optimizerState;
      const state = optimizer.getState();
      try {
        const named = [
          ...state.firstMoments.map((tensor, i) => ({ name: `m/${i}`, tensor })),
          ...state.secondMoments.map((tensor, i) => ({ name: `v/${i}`, tensor })),
        ];
        const { data, specs } = await tf.io.encodeWeights(named);
        await writeFile(join(temp, OPTIMIZER_BIN), new Uint8Array(toArrayBuffer(data)));
        await writeFile(
          join(temp, OPTIMIZER_JSON),
          JSON.stringify({ type: 'adam', options: optimizer.options, step: state.step, variables: state.firstMoments.length, weightsManifest: [{ paths: [OPTIMIZER_BIN], weights: specs }] }),
        );
      } finally {
        tf.dispose([...state.firstMoments, ...state.secondMoments]);
      }
    }
    if (await exists(dir)) {
      const old = join(parent, `.${basename(dir)}.old-${suffix}`);
      await rename(dir, old);
      await rename(temp, dir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, dir);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Loads a model saved by `saveModel` (or any model.json + weights files) as a tf.LayersModel. */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  registerPyTorchBatchNorm();
  return tfl.loadLayersModel(fileSystemHandler(dir));
}

/**
 * Loads the optimiser state saved with a model, or null if none was saved. The caller disposes
 * the tensors (after `AdamOptimizer.setState`, or use `restoreOptimizer`).
 */
export async function loadOptimizerState(dir: string): Promise<{ options: AdamOptions; state: AdamState } | null> {
  const jsonPath = join(dir, OPTIMIZER_JSON);
  if (!(await exists(jsonPath))) return null;
  let json: {
    type: string;
    options: AdamOptions;
    step: number;
    variables: number;
    weightsManifest: tf.io.WeightsManifestConfig;
  };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (error) {
    throw new Error(`loadOptimizerState: cannot read ${jsonPath}: ${(error as Error).message}`);
  }
  if (json.type !== 'adam') throw new Error(`loadOptimizerState: ${jsonPath} has type '${json.type}', expected 'adam'`);
  const group = json.weightsManifest?.[0];
  if (!group || !Array.isArray(group.paths) || !Number.isInteger(json.variables)) {
    throw new Error(`loadOptimizerState: ${jsonPath} must hold variables and a weightsManifest`);
  }
  const data = bufferToArrayBuffer(await readFile(join(dir, group.paths[0])));
  const tensors = tf.io.decodeWeights(data, group.weights);
  const pick = (prefix: string) => Array.from({ length: json.variables }, (_, i) => {
    const t = tensors[`${prefix}/${i}`];
    if (!t) throw new Error(`loadOptimizerState: ${jsonPath} lacks tensor ${prefix}/${i}`);
    return t;
  });
  try {
    return { options: json.options, state: { step: json.step, firstMoments: pick('m'), secondMoments: pick('v') } };
  } catch (error) {
    tf.dispose(Object.values(tensors));
    throw error;
  }
}

/** An AdamOptimizer over `variables` with the options and state saved in `dir` (null if none saved). */
export async function restoreOptimizer(dir: string, variables: tf.Variable[]): Promise<AdamOptimizer | null> {
  const saved = await loadOptimizerState(dir);
  if (!saved) return null;
  const optimizer = new AdamOptimizer(variables, saved.options);
  try {
    optimizer.setState(saved.state);
  } catch (error) {
    optimizer.dispose();
    throw error;
  } finally {
    tf.dispose([...saved.state.firstMoments, ...saved.state.secondMoments]);
  }
  return optimizer;
}
