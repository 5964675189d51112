// `masa train`: contrastive instance learning of the MASA adapter (masa-spec 3-6).
// One step: the key and reference views of a batch of pairs go through backbone -> adapter
// (separate passes, as the official model); proposals per view (jittered GT boxes, or the RPN);
// track-head samples and targets per pair (train/track_targets.h); embeddings; unbiased
// contrastive + margin L2 losses; backward through the track head, adapter and (when it trains)
// the backbone; gradients averaged over ranks; one optimizer step at the schedule's lr.
// Checkpoints (train/checkpoint.h) hold everything needed to continue bit-exactly on the CPU.
#ifndef MASA_TRAINER_H
#define MASA_TRAINER_H

#include "core/config.h"

extern const cfg_key train_schema[];

typedef struct {
  const char *config_path;   // for the log
  const char *run_dir;       // overrides train.run_dir when set
  const char *data;          // overrides data.path when set
  const char *resume;        // checkpoint file or run dir ("auto": the run dir's latest, if any)
  const char *init;          // weights to start from (fine-tuning)
  int64_t stop_after;        // > 0: stop after this many steps in this process (tests: kill/resume)
  const char *device;        // "cpu" (NULL), "cuda", "cuda:N", "guard" (core/device.h)
} train_args;

// Runs training; returns 0 on success. The config must have every schema registered.
int train_run(config *cfg, const train_args *a);

#endif
