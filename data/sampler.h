// Which dataset samples an epoch visits, as pure functions of (seed, epoch, position):
//   random   uniform draws with replacement, a fixed number per epoch (the official
//            RandomSampleConcatDataset: 200,000 draws from SA-1B-500K);
//   shuffle  a pass without replacement: position p of epoch e is perm_e(p) for a keyed
//            bijection of [0, n) (a 4-round Feistel network with cycle walking, so nothing of
//            size n is stored).
// The mixup partner of a position is an independent uniform draw. A bad sample is replaced by a
// uniform draw keyed by its attempt number, so replacements are deterministic too.
// Positions are global across data-parallel ranks; the loader gives rank r of w the positions
// k*w + r.
#ifndef MASA_SAMPLER_H
#define MASA_SAMPLER_H

#include <stdint.h>

typedef enum { SAMPLE_RANDOM = 0, SAMPLE_SHUFFLE = 1 } sample_mode;

typedef struct {
  sample_mode mode;
  int64_t n;             // dataset size
  int64_t epoch_length;  // positions per epoch (all ranks together)
  uint64_t seed;
} sampler;

// MASA_ERR for an empty dataset, a shuffle epoch longer than the dataset or sizes past the
// counter ranges (2^32 - 1 samples, 2^32 positions per epoch). epoch_length 0 in shuffle mode means n.
int sampler_init(sampler *s, sample_mode mode, int64_t n, int64_t epoch_length, uint64_t seed);
// attempt 0: the position's sample; attempt a > 0: its a-th replacement (a < 256).
int64_t sampler_main(const sampler *s, int64_t epoch, int64_t pos, int attempt);
int64_t sampler_mix(const sampler *s, int64_t epoch, int64_t pos, int attempt);
// RNG stream for the views of a position (data/views.h).
uint64_t sampler_view_stream(int64_t epoch, int64_t pos);

#define SAMPLER_MAX_EPOCH (INT64_C(1) << 20)
#define SAMPLER_MAX_ATTEMPTS 256

#endif
