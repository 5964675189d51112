// Samples and targets of the tracking losses for one key/reference image pair (masa-spec §4.2,
// mmdet QuasiDenseTrackHead / MasaTrackHead loss):
//   each view: MaxIoUAssigner 0.7 / 0.3 / min_pos 0.5, no low-quality matching, on its
//   proposals; CombinedSampler 512, pos_fraction 0.5, neg_pos_ub 3, GTs prepended,
//   instance-balanced positives, random negatives (train/sample.h, one rng_key per view);
//   key RoIs = the key view's sampled positives (ascending sample index);
//   ref RoIs = all the reference view's samples, positives first then negatives;
//   target T (num_key, num_ref): with match[i] = the FIRST reference GT whose instance id equals
//   key GT i's id when that id is > 0, else -1 (mmdet's gt_match_indices),
//   T[p, q] = 1 iff q is a reference positive and match[key GT of p] == ref GT of q.
//   With unique ids this is "same instance id, id > 0"; reference negatives are all 0; key rows
//   of instances absent from the reference view are all 0 (the losses drop them).
//
// Configs without an RPN get proposals from jitter_proposals: per GT, copies_per_gt boxes
//   (cx + scale w n0, cy + scale h n1, w exp(scale n2), h exp(scale n3)), n ~ N(0, 1), clipped
//   to the image (a copy that collapses below 1 px after clipping falls back to its GT box),
//   followed by num_random boxes uniform over the image (side 5..50 % of the image side) that
//   supply negatives. The GTs themselves are not repeated: the sampler prepends them. This mode
//   is this project's choice (the official recipe always has an RPN); draws: rng_normal(key,
//   (gt * copies + c) * 4 + coord) for copies, rng_uniform(key, 2^40 + 4 r + coord) for the
//   random boxes.
#ifndef MASA_TRACK_TARGETS_H
#define MASA_TRACK_TARGETS_H

#include <stdint.h>

#include "train/assign.h"
#include "train/sample.h"

typedef struct {
  max_iou_assigner_cfg assigner;
  sampler_cfg sampler;
} track_sample_cfg;

track_sample_cfg track_sample_cfg_default(void);

// One view: its (detached) proposals and GTs with instance ids.
typedef struct {
  int64_t num_proposals;
  const float *proposals;  // (num_proposals, 4)
  int64_t num_gts;
  const float *gts;        // (num_gts, 4)
  const int64_t *ids;      // (num_gts) instance ids; <= 0 never matches
} track_view;

typedef struct {
  int64_t num_key, num_ref, num_ref_pos;
  float *key_rois;   // (num_key, 4)
  float *ref_rois;   // (num_ref, 4), positives first
  int64_t *key_gt;   // (num_key) 0-based key GT
  int64_t *ref_gt;   // (num_ref) 0-based ref GT, -1 for negatives
  float *target;     // (num_key, num_ref) 0 / 1, the losses' `target` (train/losses.h)
} track_targets;

void track_targets_pair(const track_sample_cfg *cfg, const track_view *key, const track_view *ref,
                        rng_key key_rng, rng_key ref_rng, track_targets *out);
void track_targets_free(track_targets *t);

typedef struct {
  int copies_per_gt;  // 8
  float scale;        // 0.1
  int num_random;     // 64
} jitter_proposal_cfg;

jitter_proposal_cfg jitter_proposal_cfg_default(void);
// Number of boxes jitter_proposals writes for g GTs.
int64_t jitter_proposal_count(const jitter_proposal_cfg *cfg, int64_t g);
// gts (g, 4) inside an img_h x img_w input; out (jitter_proposal_count, 4). Returns the count.
int64_t jitter_proposals(const jitter_proposal_cfg *cfg, int64_t g, const float *gts,
                         float img_h, float img_w, rng_key key, float *out);

#endif
