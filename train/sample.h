// Positive/negative sampling of assigned boxes (masa-spec §3, §4.2): mmdet's RandomSampler and
// CombinedSampler(InstanceBalancedPosSampler, RandomSampler), with mmdet 3.x BaseSampler.sample:
//   1. add_gt_as_proposals and G > 0: the GTs are prepended (assign_result_add_gt), so box index
//      i < G is GT i, assigned to itself;
//   2. E = int(num * pos_fraction) expected positives; candidates = boxes with gt_inds > 0;
//   3. positives: all candidates if there are <= E, else
//        RandomSampler: a uniform random E-subset;
//        InstanceBalancedPosSampler: G' = number of distinct GTs among the candidates,
//          q = round(E / G') + 1 (Python round: half to even); per GT in ascending GT order, all
//          its candidates if <= q, else a random q-subset; if the total is < E, E - total extra
//          indices are drawn uniformly from ALL candidates and merged (duplicates collapse), if
//          > E a random E-subset of the union is kept;
//   4. positives are deduplicated and sorted ascending (torch unique), P = their count;
//   5. negatives: E_neg = num - P, capped at int(neg_pos_ub * max(1, P)) when neg_pos_ub >= 0;
//      candidates = boxes with gt_inds == 0 (ignored boxes, -1, are never sampled); all if
//      <= E_neg, else a uniform random E_neg-subset; sorted ascending.
// The top-up in step 3 reproduces mmdet as it runs, not as it reads: mmdet removes the already
// sampled indices with a Python set difference of 0-d tensors, which hash by identity, so
// nothing is removed and the merged result may hold fewer than E positives.
// ib_topup_excludes_sampled = 1 gives the intended behaviour (extras drawn only from candidates
// not yet sampled, so exactly E positives whenever more than E exist).
//
// Randomness: every draw is rng_below(key.seed, key.stream, (call << 40) | draw), a pure
// function of the key, the call and the draw number, where call 0 = RandomSampler positives,
// 1 = negatives, 2 = instance-balanced top-up, 3 = instance-balanced trim, 16 + i = the subset
// of GT i (0-based, in the prepended numbering). A random k-subset of a candidate list (kept in
// ascending index order) is a partial Fisher-Yates shuffle: for t = 0..k-1 swap position t with
// t + rng_below(n - t). sample_rng_key() derives the key of one sampling call in a training
// step (see there); nothing depends on thread count, batch composition or call order.
#ifndef MASA_SAMPLE_H
#define MASA_SAMPLE_H

#include <stdint.h>

#include "train/assign.h"

typedef struct {
  uint64_t seed, stream;
} rng_key;

// Who samples: one stream per (role, step, image).
typedef enum {
  SAMPLE_ROLE_RPN = 1,         // RPN anchors, key view
  SAMPLE_ROLE_RCNN = 2,        // RoI head proposals, key view
  SAMPLE_ROLE_TRACK_KEY = 3,   // track head, key view
  SAMPLE_ROLE_TRACK_REF = 4,   // track head, reference view
  SAMPLE_ROLE_JITTER_KEY = 5,  // jittered proposals (no-RPN configs), key view
  SAMPLE_ROLE_JITTER_REF = 6,
} sample_role;

// stream = 0xA << 60 | role << 52 | step << 20 | image: tag 0xA keeps these streams apart from
// data/sampler.c's (tags 1-4). step < 2^32 (the optimizer step), image < 2^20 (the image's
// GLOBAL index in the step's batch over all ranks, so results do not depend on the world size).
rng_key sample_rng_key(uint64_t seed, sample_role role, int64_t step, int64_t image);

typedef struct {
  int64_t num;                    // 256 (RPN), 512 (RoI head, track head)
  double pos_fraction;            // 0.5 (RPN, track), 0.25 (RoI head)
  double neg_pos_ub;              // -1 (no bound), 3 (track)
  int add_gt_as_proposals;        // 0 (RPN), 1 (RoI head, track)
  int instance_balanced;          // 1: CombinedSampler(InstanceBalancedPosSampler, RandomSampler)
  int ib_topup_excludes_sampled;  // 0: mmdet as run (see above); 1: as intended
} sampler_cfg;

sampler_cfg sampler_cfg_rpn(void);    // RandomSampler 256, 0.5, -1, no GT
sampler_cfg sampler_cfg_rcnn(void);   // RandomSampler 512, 0.25, -1, GT added
sampler_cfg sampler_cfg_track(void);  // CombinedSampler 512, 0.5, 3, GT added, instance-balanced

typedef struct {
  int64_t num_pos, num_neg;
  int64_t num_gt_prepended;  // G when the GTs were prepended, else 0
  int64_t *pos_inds;         // (num_pos) ascending, into the (GT-prepended) box list
  int64_t *neg_inds;         // (num_neg) ascending
  int64_t *pos_gt;           // (num_pos) 0-based assigned GT of each positive
} sample_result;

// Samples from an assignment; prepends the GTs to `assign` first when cfg asks for it (as mmdet
// does, the assign result is modified). Allocates out's arrays (sample_result_free).
void sample_boxes(const sampler_cfg *cfg, assign_result *assign, rng_key key, sample_result *out);
void sample_result_free(sample_result *s);

// mmdet SamplingResult.avg_factor with avg_factor_with_neg (RandomSampler, CombinedSampler):
// max(num_pos, 1) + max(num_neg, 1).
double sample_avg_factor(const sample_result *s);

// Box k of the sampled list (GT-prepended numbering): gts[k] for k < num_gt_prepended, else
// boxes[k - num_gt_prepended]. Gathers n such boxes (inds) into out (n, 4).
void sample_gather_boxes(const sample_result *s, const float *gts, const float *boxes,
                         int64_t n, const int64_t *inds, float *out);

// Uniform random k-subset of gallery[0..n) (k <= n), in place: afterwards gallery[0..k) holds
// it. Draws rng_below(key, (call << 40) | t). Exposed for the property tests.
void sample_random_choice(int64_t *gallery, int64_t n, int64_t k, rng_key key, uint64_t call);

#endif
