// One training step of `masa train` (train/trainer.c) callable on its own, for benchmarks:
// the same forward (both views, proposals, track targets, embeddings, losses, distillation) and
// backward as the training loop, on a batch the caller supplies. The optimizer step and the
// cross-rank gradient average stay with the caller (optim_step, dist_allreduce_sum_f32).
#ifndef MASA_TRAIN_STEP_H
#define MASA_TRAIN_STEP_H

#include <stdint.h>

#include "core/config.h"
#include "data/loader.h"
#include "model/masa_model.h"

typedef struct train_stepper train_stepper;

typedef struct {
  double loss;                        // weighted sum of this rank's loss terms
  double key_rois, ref_rois;          // track-head RoIs of the key and reference views
  double det_rois;                    // box-head RoIs of the distillation branch (0 without it)
  double images;                      // pairs in the batch
} train_step_stats;

// The train.* and loss.* keys of cfg for model m (which must outlive the stepper). NULL with
// masa_errmsg() on a bad value, or when the options need the RPN and m has none.
train_stepper *train_stepper_open(const config *cfg, const masa_model *m);
// Resets ctx's arena, zeroes m's gradients and runs the trainer's step on b (step index `step`
// keys the random draws; rank/world as the loader's shard). Gradients are left in m->params.
void train_stepper_run(train_stepper *s, model_ctx *ctx, const loader_batch *b, int64_t step,
                       int rank, int world, train_step_stats *out);
void train_stepper_close(train_stepper *s);

#endif
