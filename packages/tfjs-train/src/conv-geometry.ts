import { backend_util } from '@tensorflow/tfjs-core';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;

/** Everything a channels-last 2-D convolution needs to know about its shapes. */
export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padTop: number;
  padLeft: number;
}

export function toPair(value: number | [number, number] | number[] | undefined, fallback = 1): [number, number] {
  if (value == null) return [fallback, fallback];
  if (typeof value === 'number') return [value, value];
  return [value[0], value[1]];
}

/** Geometries by their arguments: a training step asks for the same few dozen 40+ times each. */
const geometryCache = new Map<string, Readonly<ConvGeometry>>();
const GEOMETRY_CACHE_LIMIT = 512;

/**
 * Shapes of a channels-last convolution, computed by tfjs-core's own `computeConv2DInfo` so that
 * output sizes and SAME padding match the forward kernel exactly. Memoised (and frozen): at the
 * lab's model sizes computing it on every kernel call was a tenth of the kernels' own time.
 */
export function convGeometry(
  xShape: number[],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
  depthwise: boolean,
): Readonly<ConvGeometry> {
  const key = `${xShape}|${filterShape}|${strides}|${dilations}|${typeof pad === 'object' ? pad.join(';') : pad}|${dimRoundingMode}|${depthwise}`;
  let g = geometryCache.get(key);
  if (g == null) {
    if (geometryCache.size >= GEOMETRY_CACHE_LIMIT) geometryCache.clear();
    g = Object.freeze(computeGeometry(xShape, filterShape, strides, dilations, pad, dimRoundingMode, depthwise));
    geometryCache.set(key, g);
  }
  return g;
}

function computeGeometry(
  xShape: number[],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
  depthwise: boolean,
): ConvGeometry {
  const info = backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape,
    strides,
    dilations,
    pad as 'valid',
    dimRoundingMode,
    depthwise,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** NCHW attrs arrive as 'NCHW'; everything here computes in NHWC. */
export function isChannelsFirst(dataFormat: unknown): boolean {
  return dataFormat === 'NCHW' || dataFormat === 'channelsFirst';
}

/** Attributes tfjs-core sends to the conv backprop kernels (dilations are optional: core never sends them). */
export interface ConvBackpropAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
}

/**
 * The output positions [start, end) of one filter tap whose input position `o · stride + offset`
 * falls inside an input of size `inSize` (offset = tap · dilation − padding); the rest read padding.
 */
export function validOutputRange(offset: number, stride: number, outSize: number, inSize: number): [number, number] {
  let start = 0;
  while (start < outSize && start * stride + offset < 0) start++;
  let end = outSize;
  while (end > start && (end - 1) * stride + offset >= inSize) end--;
  return [start, end];
}
