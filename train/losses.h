// Tracking losses on one image's embeddings (masa-spec 4.3, 4.4). Each returns the loss value
// (already multiplied by its weight) and, when the gradient pointers are not NULL, ACCUMULATES
// d(weight * loss) / d(embeddings) into them (scale the result by 1/num_images for the batch mean
// by passing weight / num_images).
//   key  (nk, d): embeddings of the key view's positive samples
//   ref  (nr, d): embeddings of the reference view's samples (positives and negatives)
//   target (nk, nr): 1 where key i and ref j belong to the same instance, else 0
#ifndef MASA_LOSSES_H
#define MASA_LOSSES_H

#include <stdint.h>

// MASA's UnbiasedContrastLoss: logits S = key ref^T (raw dot products, no temperature); for each
// row i with positives P_i (rows without positives are dropped):
//   s = S_i - max_j S_ij;  denom = sum_{p in P_i} e^{s_p} / |P_i| + sum_{n not in P_i} e^{s_n}
//   L_i = -(1/|P_i|) sum_{p in P_i} (s_p - log denom)
//   loss = weight * sum_i L_i / (#valid rows + FLT_EPSILON)
double unbiased_contrast_loss(int64_t nk, int64_t nr, int64_t d, const float *key,
                              const float *ref, const float *target, float weight, float *dkey,
                              float *dref);

// mmdet MarginL2Loss on cosine similarities C = normalize(key) normalize(ref)^T
// (F.normalize, eps 1e-12): positives get pred - pos_margin when pos_margin > 0, negatives
// pred - neg_margin when neg_margin > 0, then clamp to [0, 1]. If neg_pos_ub > 0 and
// #neg / (#pos + 1e-6) > neg_pos_ub, only neg_pos_ub * #pos negatives keep weight: the hardest
// ((pred - 0)^2 largest; ties to the lower flat index) when hard_mining, else a random subset
// drawn from (seed, stream) counters. loss = weight * sum w (pred - t)^2 / (#(w > 0) + FLT_EPSILON).
typedef struct {
  float pos_margin, neg_margin;
  float neg_pos_ub;
  int hard_mining;
  uint64_t seed, stream;  // for random negative selection when hard_mining is 0
} margin_l2_cfg;

double margin_l2_loss(int64_t nk, int64_t nr, int64_t d, const float *key, const float *ref,
                      const float *target, const margin_l2_cfg *cfg, float weight, float *dkey,
                      float *dref);

// The negative selection of margin_l2_loss, shared with its CUDA twin (which downloads pred and
// selects on the host: a sort of a few thousand values). n = nk * nr, host memory.
// 1 when neg_pos_ub applies to this target (more negatives than neg_pos_ub per positive).
int margin_l2_needs_mining(int64_t n, const float *target, const margin_l2_cfg *cfg);
// w[i] = 1, except the negatives not kept when mining applies (pred: the clamped predictions).
// Returns the number of elements with w[i] = 1.
int64_t margin_l2_weights(int64_t n, const float *target, const float *pred,
                          const margin_l2_cfg *cfg, unsigned char *w);

// Device forms (embeddings and gradients on a device, target on the HOST since the targets are
// built there): train/dispatch_train.h, unbiased_contrast_loss_dev and margin_l2_loss_dev.

#endif
