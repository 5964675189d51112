// Epoch sampling (see sampler.h). Every draw is Philox keyed by the seed, with a stream word
// packing (purpose, attempt, epoch, position): 4 + 8 + 20 + 32 bits.
#include "data/sampler.h"

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"

enum { TAG_MAIN = 1, TAG_MIX = 2, TAG_VIEW = 3, TAG_PERM = 4 };

static uint64_t stream_of(int tag, int attempt, int64_t epoch, int64_t pos) {
  masa_assert(attempt >= 0 && attempt < SAMPLER_MAX_ATTEMPTS);
  masa_assert(epoch >= 0 && epoch < SAMPLER_MAX_EPOCH);
  masa_assert(pos >= 0 && pos < (INT64_C(1) << 32));
  return ((uint64_t)tag << 60) | ((uint64_t)attempt << 52) | ((uint64_t)epoch << 32) | (uint64_t)pos;
}

int sampler_init(sampler *s, sample_mode mode, int64_t n, int64_t epoch_length, uint64_t seed) {
  if (n < 1) return masa_error("the dataset is empty");
  if (n >= (INT64_C(1) << 32)) return masa_error("the dataset has %lld samples; at most 2^32 - 1 are supported", (long long)n);
  if (mode == SAMPLE_SHUFFLE && epoch_length == 0) epoch_length = n;
  if (epoch_length < 1 || epoch_length > (INT64_C(1) << 32))
    return masa_error("epoch length %lld is out of range (1 .. 2^32)", (long long)epoch_length);
  if (mode == SAMPLE_SHUFFLE && epoch_length > n)
    return masa_error("a shuffled pass without replacement has at most %lld samples, epoch length is %lld "
                      "(data.epoch_length = 0 takes the whole dataset)", (long long)n, (long long)epoch_length);
  s->mode = mode, s->n = n, s->epoch_length = epoch_length, s->seed = seed;
  return MASA_OK;
}

// Keyed bijection of [0, n): balanced Feistel on 2*half bits (2^(2 half) < 4n), cycle walking.
static int64_t permute(const sampler *s, int64_t epoch, int64_t pos) {
  int bits = 2;
  while ((INT64_C(1) << bits) < s->n) bits++;
  int half = (bits + 1) / 2;
  uint64_t mask = (UINT64_C(1) << half) - 1;
  uint64_t x = (uint64_t)pos;
  do {
    uint64_t l = x >> half, r = x & mask;
    for (int round = 0; round < 4; round++) {
      uint64_t f = rng_u32(s->seed, stream_of(TAG_PERM, round, epoch, 0), r) & mask;
      uint64_t nl = r, nr = l ^ f;
      l = nl, r = nr;
    }
    x = (l << half) | r;
  } while (x >= (uint64_t)s->n);
  return (int64_t)x;
}

int64_t sampler_main(const sampler *s, int64_t epoch, int64_t pos, int attempt) {
  if (s->mode == SAMPLE_SHUFFLE && attempt == 0) return permute(s, epoch, pos);
  return (int64_t)rng_below(s->seed, stream_of(TAG_MAIN, attempt, epoch, pos), 0, (uint32_t)s->n);
}

int64_t sampler_mix(const sampler *s, int64_t epoch, int64_t pos, int attempt) {
  return (int64_t)rng_below(s->seed, stream_of(TAG_MIX, attempt, epoch, pos), 0, (uint32_t)s->n);
}

uint64_t sampler_view_stream(int64_t epoch, int64_t pos) { return stream_of(TAG_VIEW, 0, epoch, pos); }
