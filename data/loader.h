// Batches of view pairs for training. Worker threads (pthreads) build samples into a bounded
// ring of `prefetch` batches; the consumer takes batches in order. Every sample is a pure
// function of (seed, epoch, position) and the dataset, so batches are bit-identical whatever the
// number of workers, and a loader opened at a saved cursor continues exactly where the saved
// one would have.
// Positions: batch b of epoch e on rank r (of world w) holds positions (b*B + i)*w + r,
// i < B; an epoch has epoch_length / (B*w) batches per rank (an incomplete tail is dropped).
// Bad samples (dataset_load error, undecodable or mis-sized image, masks of the wrong size) are
// replaced deterministically (data/sampler.h) and counted; the count travels in the cursor.
#ifndef MASA_LOADER_H
#define MASA_LOADER_H

#include <stdint.h>

#include "core/config.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "data/views.h"

typedef struct {
  const char *path;       // dataset (data/dataset.h); unused by loader_open_source
  dataset_opts ds;
  views_opts views;
  sample_mode sampling;   // SAMPLE_RANDOM (official) or SAMPLE_SHUFFLE
  int64_t epoch_length;   // positions per epoch, all ranks (official 200000; shuffle: 0 = all)
  int batch_size;         // pairs per batch per rank
  int workers;            // threads (>= 1)
  int prefetch;           // batches in flight (>= 1)
  uint64_t seed;
  int rank, world;        // data-parallel shard
  int max_replace;        // replacement attempts per bad sample before giving up (< 256)
} loader_opts;

// The position of the next batch; save it with a checkpoint to resume.
typedef struct {
  int64_t epoch, batch;  // batch index within the epoch (per rank)
  int64_t skipped;       // bad samples replaced so far
} loader_cursor;

typedef struct {
  loader_cursor cursor;  // this batch's position (skipped: count before this batch)
  int n, size;           // pairs, view side S
  float *img[2];         // (n, 3, S, S) key views and reference views, normalised RGB
  view_pair *pairs;      // (n) boxes, ids, maps, id maps; pairs[i].v[k].img points into img[k]
  int64_t *index;        // (n) dataset index of each pair's image (after replacement)
  int64_t *mix_index;    // (n) mixup image index, -1 without mixup
  int skipped;           // bad samples replaced while building this batch
} loader_batch;

// Any source of raw samples (tests use in-memory ones). load must be thread-safe.
typedef struct {
  void *ctx;
  int64_t n;
  int (*load)(void *ctx, int64_t idx, raw_sample *out);
} sample_source;

typedef struct loader loader;

// NULL with masa_errmsg() on bad options or an unreadable dataset. start may be NULL (epoch 0).
loader *loader_open(const loader_opts *o, const loader_cursor *start);
loader *loader_open_source(const loader_opts *o, sample_source src, const loader_cursor *start);
// The next batch, valid until the next call or loader_close. NULL with masa_errmsg() when a
// sample could not be replaced after max_replace attempts (the loader is then finished).
const loader_batch *loader_next(loader *l);
// The batch after the one the consumer holds, if it is already built (NULL otherwise, or with
// prefetch < 2, or before the first loader_next). It stays valid, unchanged, until the
// loader_next after the one that returns it; its image memory is that batch's (so a device copy
// made from it now is the next batch's). Never blocks.
const loader_batch *loader_peek(loader *l);
// Calls fn on every batch image buffer of the ring (the memory loader_batch.img points into),
// e.g. to page-lock it for fast uploads.
void loader_for_each_image_buffer(loader *l, void (*fn)(void *ctx, void *p, size_t bytes),
                                  void *ctx);
loader_cursor loader_position(const loader *l);  // of the batch the next loader_next returns
int64_t loader_skipped(const loader *l);         // bad samples in the batches returned so far
int64_t loader_batches_per_epoch(const loader *l);
const char *loader_describe(const loader *l);
void loader_close(loader *l);

// data.* and aug.* recipe keys (data/data_config.c; registered by the CLI) and their translation.
extern const cfg_key data_schema[];
// Fills o from cfg (path points into cfg). MASA_ERR naming the key on a bad value.
int loader_opts_from_config(const config *cfg, loader_opts *o);

#endif
