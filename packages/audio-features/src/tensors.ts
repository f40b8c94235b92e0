import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMap } from './features';

function checkMap(map: FeatureMap, label: string): void {
  if (!Number.isInteger(map.height) || !Number.isInteger(map.width) || map.height < 1 || map.width < 1) {
    throw new Error(`${label}: height and width must be positive integers, got ${map.height}×${map.width}`);
  }
  if (map.data.length !== map.height * map.width) {
    throw new Error(`${label}: data has ${map.data.length} values, expected ${map.height}×${map.width}`);
  }
}

/** A feature map as a `[height, width, 1]` tensor (the caller disposes it). */
export function featureMapToTensor(map: FeatureMap): tf.Tensor3D {
  checkMap(map, 'featureMapToTensor');
  return tf.tensor3d(map.data, [map.height, map.width, 1], 'float32');
}

/** Feature maps of one shape as a `[n, height, width, 1]` batch (one tensor, no intermediates). */
export function stackFeatureMaps(maps: readonly FeatureMap[]): tf.Tensor4D {
  if (maps.length === 0) throw new Error('stackFeatureMaps: no feature maps given');
  const { height, width } = maps[0];
  const size = height * width;
  const batch = new Float32Array(maps.length * size);
  maps.forEach((map, i) => {
    checkMap(map, `stackFeatureMaps: map ${i}`);
    if (map.height !== height || map.width !== width) {
      throw new Error(`stackFeatureMaps: map ${i} is ${map.height}×${map.width}, map 0 is ${height}×${width}`);
    }
    batch.set(map.data, i * size);
  });
  return tf.tensor4d(batch, [maps.length, height, width, 1], 'float32');
}
