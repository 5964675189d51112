// Held-out instance matching: for view pairs from the loader, embed every ground-truth instance
// in both views (backbone -> adapter -> track head at inference), and count the instances of the
// key view whose nearest reference-view embedding (cosine similarity, within the same image) is
// the same instance. Instances absent from the reference view are not counted. This is the
// quantity the contrastive loss trains, measured without any tracker in between.
#ifndef MASA_MATCH_EVAL_H
#define MASA_MATCH_EVAL_H

#include <stdint.h>

#include "data/loader.h"
#include "model/masa_model.h"

typedef struct {
  int64_t pairs, instances, correct;
  double accuracy;         // correct / instances
  double chance;           // mean over counted instances of 1 / (reference instances in the image)
} match_result;

// Reads `batches` batches from ld. MASA_ERR when the loader fails.
int match_eval(const masa_model *m, loader *ld, int64_t batches, match_result *out);

#endif
