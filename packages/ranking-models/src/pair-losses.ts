import * as tf from '@tensorflow/tfjs-core';

function checkPairShapes(s1: tf.Tensor, s2: tf.Tensor, y: tf.Tensor, where: string): void {
  if (s1.size !== s2.size || s1.size !== y.size) {
    throw new Error(`${where}: s1, s2 and y must have the same number of elements, got ${s1.size}, ${s2.size}, ${y.size}`);
  }
}

/**
 * PyTorch `MarginRankingLoss` (reduction 'mean'): mean(max(0, −y·(s1 − s2) + margin)).
 * y = 1 means s1 should be the larger score, y = −1 the smaller. Default margin 0, as in PyTorch;
 * the lab trains with margin 10. At the hinge (−y·(s1 − s2) + margin exactly 0) the gradient here is
 * 0 (tf.relu's gradient, step(x) = x > 0 ? 1 : 0); PyTorch 1.13 differs there: its clamp_min backward
 * passes the gradient where the term is ≥ 0, i.e. takes the hinge point as active (−y/n for s1,
 * +y/n for s2, n pairs). Only exact ties reach it (e.g. margin 0 with s1 = s2).
 */
export function marginRankingLoss(s1: tf.Tensor, s2: tf.Tensor, y: tf.Tensor, margin = 0): tf.Scalar {
  checkPairShapes(s1, s2, y, 'marginRankingLoss');
  return tf.tidy(() => {
    const diff = tf.sub(tf.reshape(s1, [-1]), tf.reshape(s2, [-1]));
    const yf = tf.cast(tf.reshape(y, [-1]), 'float32');
    return tf.mean(tf.relu(tf.add(tf.neg(tf.mul(yf, diff)), margin))) as tf.Scalar;
  });
}

/**
 * RankNet's logistic pair loss: mean(log(1 + exp(−y·(s1 − s2)))), i.e. binary cross-entropy of
 * σ(s1 − s2) against (y + 1)/2. Smooth alternative to the margin loss; softplus keeps it stable.
 */
export function logisticPairLoss(s1: tf.Tensor, s2: tf.Tensor, y: tf.Tensor): tf.Scalar {
  checkPairShapes(s1, s2, y, 'logisticPairLoss');
  return tf.tidy(() => {
    const diff = tf.sub(tf.reshape(s1, [-1]), tf.reshape(s2, [-1]));
    const yf = tf.cast(tf.reshape(y, [-1]), 'float32');
    return tf.mean(tf.softplus(tf.neg(tf.mul(yf, diff)))) as tf.Scalar;
  });
}

/**
 * Turns a pair loss (s1, s2, y) into a `fit` loss over a ranker's pair output [B, 2]
 * (column 0 scores clip a, column 1 clip b) and the targets y [B].
 */
export function pairScoresLoss(
  pairLoss: (s1: tf.Tensor, s2: tf.Tensor, y: tf.Tensor) => tf.Scalar,
): (output: tf.Tensor, target: tf.Tensor) => tf.Scalar {
  return (output, target) =>
    tf.tidy(() => {
      if (output.rank !== 2 || output.shape[1] !== 2) {
        throw new Error(`pairScoresLoss: output must be pair scores [B, 2], got shape ${JSON.stringify(output.shape)}`);
      }
      const [s1, s2] = tf.split(output, 2, 1);
      return pairLoss(s1, s2, target);
    });
}

/**
 * Softmax cross-entropy of logits [B, K] against integer class labels [B] (PyTorch
 * `CrossEntropyLoss`, reduction 'mean'), via log-softmax for stability.
 */
export function crossEntropyLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (logits.rank !== 2 || labels.size !== logits.shape[0]) {
    throw new Error(`crossEntropyLoss: logits must be [B, K] and labels [B], got ${JSON.stringify(logits.shape)} and ${JSON.stringify(labels.shape)}`);
  }
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(tf.reshape(labels, [-1]), 'int32'), logits.shape[1] as number);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}
