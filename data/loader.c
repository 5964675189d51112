// Threaded batch loader (see loader.h). Work unit: one sample (pair), numbered j from the
// opening cursor; sample j belongs to batch j / B, which lives in ring slot (j / B) % prefetch.
// A worker may start sample j only while its batch is within `prefetch` batches of the one the
// consumer holds, so a slot is never written while it is being read.
#include "data/loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"

typedef struct {
  loader_batch b;
  int done;        // samples finished
  int failed;      // a sample could not be built
  char err[512];
} slot;

struct loader {
  loader_opts o;
  dataset *ds;          // owned when opened from a path
  sample_source src;
  sampler smp;
  int64_t bpe;          // batches per epoch per rank
  int64_t start;        // global batch number of the opening cursor
  int64_t skipped0;     // skipped count of the opening cursor
  slot *slots;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_ready;
  int64_t next_job;     // next sample to start
  int64_t released;     // batches handed back by the consumer
  int holding;          // the consumer holds batch `released`
  int64_t skipped;      // in batches returned so far
  int64_t skip_logged;
  int stop, finished;
  pthread_t *threads;
  int nthreads;
  char desc[512];
};

static void slot_reset(loader *l, slot *s, int64_t batch) {
  for (int i = 0; i < s->b.n; i++) view_pair_free(&s->b.pairs[i]);
  s->done = 0, s->failed = 0, s->err[0] = 0;
  s->b.skipped = 0;
  int64_t g = l->start + batch;
  s->b.cursor.epoch = g / l->bpe;
  s->b.cursor.batch = g % l->bpe;
  s->b.cursor.skipped = 0;  // set when returned
}

// masa_error formats into the same per-thread buffer masa_errmsg() returns: copy it first.
static int give_up(int64_t pos, int64_t epoch, const char *what, int attempts) {
  char last[400];
  snprintf(last, sizeof last, "%s", masa_errmsg());
  return masa_error("%sposition %lld of epoch %lld: %d bad samples in a row; last: %s", what,
                    (long long)pos, (long long)epoch, attempts, last);
}

static void log_skip(loader *l, int64_t idx, const char *what, const char *msg) {
  pthread_mutex_lock(&l->mu);
  int64_t k = ++l->skip_logged;
  pthread_mutex_unlock(&l->mu);
  if (k <= 10 || k % 1000 == 0)
    log_warn("data: skipping %ssample %lld (bad samples so far: %lld%s): %s", what, (long long)idx,
             (long long)k, k == 10 ? "; further ones are logged every 1000" : "", msg);
}

// Builds sample i of global batch g into slot s. Returns MASA_OK or MASA_ERR (message set).
static int build_sample(loader *l, int64_t g, int i, slot *s) {
  const loader_opts *o = &l->o;
  int64_t epoch = g / l->bpe, b = g % l->bpe;
  int64_t pos = (b * o->batch_size + i) * o->world + o->rank;
  int use_mix = o->views.mixup;
  int am = 0, ax = 0, skipped = 0;
  raw_sample main, mix;
  int have_main = 0, have_mix = 0;
  int64_t im = -1, ix = -1;
  int64_t plane = 3 * (int64_t)o->views.size * o->views.size;
  view_pair *pair = &s->b.pairs[i];
  for (;;) {
    while (!have_main) {
      if (am >= o->max_replace) {
        if (have_mix) raw_sample_free(&mix);
        return give_up(pos, epoch, "", am);
      }
      im = sampler_main(&l->smp, epoch, pos, am);
      memset(&main, 0, sizeof main);
      if (l->src.load(l->src.ctx, im, &main) == MASA_OK) {
        have_main = 1;
      } else {
        log_skip(l, im, "", masa_errmsg());
        skipped++, am++;
      }
    }
    while (use_mix && !have_mix) {
      if (ax >= o->max_replace) {
        raw_sample_free(&main);
        return give_up(pos, epoch, "mixup partner of ", ax);
      }
      ix = sampler_mix(&l->smp, epoch, pos, ax);
      memset(&mix, 0, sizeof mix);
      if (l->src.load(l->src.ctx, ix, &mix) == MASA_OK) {
        have_mix = 1;
      } else {
        log_skip(l, ix, "mixup ", masa_errmsg());
        skipped++, ax++;
      }
    }
    views_status st = view_pair_build(&o->views, &main, use_mix ? &mix : NULL, o->seed,
                                      sampler_view_stream(epoch, pos), pair,
                                      s->b.img[0] + i * plane, s->b.img[1] + i * plane);
    if (st == VIEWS_OK) break;
    if (st == VIEWS_BAD_MAIN) {
      log_skip(l, im, "", masa_errmsg());
      raw_sample_free(&main);
      have_main = 0, am++;
    } else {
      log_skip(l, ix, "mixup ", masa_errmsg());
      raw_sample_free(&mix);
      have_mix = 0, ax++;
    }
    skipped++;
  }
  raw_sample_free(&main);
  if (have_mix) raw_sample_free(&mix);
  s->b.index[i] = im;
  s->b.mix_index[i] = pair->has_mix ? ix : -1;
  pthread_mutex_lock(&l->mu);
  s->b.skipped += skipped;
  pthread_mutex_unlock(&l->mu);
  return MASA_OK;
}

static void *worker_main(void *arg) {
  loader *l = arg;
  int B = l->o.batch_size, P = l->o.prefetch;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && l->next_job >= (l->released + P) * B) pthread_cond_wait(&l->cv_work, &l->mu);
    if (l->stop) break;
    int64_t j = l->next_job++;
    slot *s = &l->slots[(j / B) % P];
    pthread_mutex_unlock(&l->mu);
    int rc = build_sample(l, l->start + j / B, (int)(j % B), s);
    pthread_mutex_lock(&l->mu);
    if (rc != MASA_OK && !s->failed) {
      s->failed = 1;
      snprintf(s->err, sizeof s->err, "%s", masa_errmsg());
    }
    if (++s->done == B) pthread_cond_broadcast(&l->cv_ready);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static int check_opts(const loader_opts *o) {
  if (o->batch_size < 1) return masa_error("data.batch_size must be >= 1, got %d", o->batch_size);
  if (o->workers < 1 || o->workers > 1024) return masa_error("data.workers must be in 1..1024, got %d", o->workers);
  if (o->prefetch < 1) return masa_error("data.prefetch must be >= 1, got %d", o->prefetch);
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    return masa_error("rank %d of world %d is not a valid data-parallel shard", o->rank, o->world);
  if (o->max_replace < 1 || o->max_replace >= SAMPLER_MAX_ATTEMPTS)
    return masa_error("data.max_replace must be in 1..%d, got %d", SAMPLER_MAX_ATTEMPTS - 1, o->max_replace);
  const views_opts *v = &o->views;
  if (v->size < 8 || v->size > 8192) return masa_error("aug.view_size must be in 8..8192, got %d", v->size);
  if (v->pad_value < 0 || v->pad_value > 255) return masa_error("aug.pad_value must be in 0..255");
  if (!(v->scale_min > 0 && v->scale_max >= v->scale_min)) return masa_error("aug.scale must be 0 < min <= max");
  if (!(v->resize_min > 0 && v->resize_max >= v->resize_min)) return masa_error("aug.resize_ratio must be 0 < min <= max");
  if (!(v->mix_ratio_min > 0 && v->mix_ratio_max >= v->mix_ratio_min)) return masa_error("aug.mixup_ratio must be 0 < min <= max");
  if (v->id_map_stride < 0) return masa_error("data.id_map_stride must be >= 0");
  if (v->max_retries < 0) return masa_error("aug.max_retries must be >= 0");
  for (int c = 0; c < 3; c++)
    if (!(v->std[c] > 0)) return masa_error("data.std must be positive");
  return MASA_OK;
}

loader *loader_open_source(const loader_opts *o, sample_source src, const loader_cursor *start) {
  if (check_opts(o) != MASA_OK) return NULL;
  loader *l = callocCheck(1, sizeof *l);
  l->o = *o;
  l->src = src;
  if (sampler_init(&l->smp, o->sampling, src.n, o->epoch_length, o->seed) != MASA_OK) {
    free(l);
    return NULL;
  }
  int64_t per_batch = (int64_t)o->batch_size * o->world;
  l->bpe = l->smp.epoch_length / per_batch;
  if (l->bpe < 1) {
    masa_error("an epoch of %lld samples holds no full batch of %d pairs x %d ranks",
               (long long)l->smp.epoch_length, o->batch_size, o->world);
    free(l);
    return NULL;
  }
  loader_cursor c = {0, 0, 0};
  if (start) c = *start;
  if (c.epoch < 0 || c.epoch >= SAMPLER_MAX_EPOCH || c.batch < 0 || c.batch >= l->bpe || c.skipped < 0) {
    masa_error("cursor (epoch %lld, batch %lld) is outside this data set-up (%lld batches per epoch)",
               (long long)c.epoch, (long long)c.batch, (long long)l->bpe);
    free(l);
    return NULL;
  }
  l->start = c.epoch * l->bpe + c.batch;
  l->skipped0 = l->skipped = c.skipped;
  int B = o->batch_size, P = o->prefetch;
  int64_t S = o->views.size;
  l->slots = callocCheck((size_t)P, sizeof(slot));
  for (int k = 0; k < P; k++) {
    loader_batch *b = &l->slots[k].b;
    b->n = B, b->size = (int)S;
    for (int v = 0; v < 2; v++) b->img[v] = mallocCheck((size_t)B * 3 * S * S * sizeof(float));
    b->pairs = callocCheck((size_t)B, sizeof(view_pair));
    b->index = callocCheck((size_t)B, sizeof(int64_t));
    b->mix_index = callocCheck((size_t)B, sizeof(int64_t));
    slot_reset(l, &l->slots[k], k);
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_work, NULL);
  pthread_cond_init(&l->cv_ready, NULL);
  snprintf(l->desc, sizeof l->desc,
           "%s sampling, %lld samples/epoch, %lld batches/epoch of %d pairs (rank %d of %d), "
           "%d workers, prefetch %d, views %dx%d, seed %llu",
           o->sampling == SAMPLE_RANDOM ? "random" : "shuffled", (long long)l->smp.epoch_length,
           (long long)l->bpe, B, o->rank, o->world, o->workers, P, o->views.size, o->views.size,
           (unsigned long long)o->seed);
  l->nthreads = o->workers;
  l->threads = callocCheck((size_t)l->nthreads, sizeof(pthread_t));
  for (int t = 0; t < l->nthreads; t++) {
    int rc = pthread_create(&l->threads[t], NULL, worker_main, l);
    if (rc != 0) masa_die(__FILE__, __LINE__, "pthread_create", "pthreads", strerror(rc));
  }
  return l;
}

static int source_load(void *ctx, int64_t idx, raw_sample *out) { return dataset_load(ctx, idx, out); }

loader *loader_open(const loader_opts *o, const loader_cursor *start) {
  if (!o->path || !*o->path) {
    masa_error("no dataset given (data.path or --data)");
    return NULL;
  }
  dataset *d = dataset_open(o->path, &o->ds);
  if (!d) return NULL;
  sample_source src = {d, dataset_size(d), source_load};
  loader *l = loader_open_source(o, src, start);
  if (!l) {
    dataset_close(d);
    return NULL;
  }
  l->ds = d;
  char more[sizeof l->desc];
  int k = snprintf(more, sizeof more, "%s; ", dataset_describe(d));
  if (k > 0 && (size_t)k < sizeof more) snprintf(more + k, sizeof more - (size_t)k, "%.*s", (int)(sizeof more - (size_t)k - 1), l->desc);
  memcpy(l->desc, more, sizeof more);
  return l;
}

const loader_batch *loader_next(loader *l) {
  int B = l->o.batch_size, P = l->o.prefetch;
  pthread_mutex_lock(&l->mu);
  if (l->finished) {
    pthread_mutex_unlock(&l->mu);
    masa_error("the loader stopped after an earlier error");
    return NULL;
  }
  if (l->holding) {
    slot *s = &l->slots[l->released % P];
    slot_reset(l, s, l->released + P);
    l->released++;
    l->holding = 0;
    pthread_cond_broadcast(&l->cv_work);
  }
  slot *s = &l->slots[l->released % P];
  while (s->done < B) pthread_cond_wait(&l->cv_ready, &l->mu);
  if (s->failed) {
    l->finished = 1;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", s->err);
    pthread_mutex_unlock(&l->mu);
    masa_error("%s", msg);
    return NULL;
  }
  s->b.cursor.skipped = l->skipped;
  l->skipped += s->b.skipped;
  l->holding = 1;
  pthread_mutex_unlock(&l->mu);
  return &s->b;
}

const loader_batch *loader_peek(loader *l) {
  int B = l->o.batch_size, P = l->o.prefetch;
  if (P < 2) return NULL;
  pthread_mutex_lock(&l->mu);
  const loader_batch *b = NULL;
  if (l->holding && !l->finished) {
    slot *s = &l->slots[(l->released + 1) % P];
    if (s->done >= B && !s->failed) b = &s->b;
  }
  pthread_mutex_unlock(&l->mu);
  return b;
}

void loader_for_each_image_buffer(loader *l, void (*fn)(void *ctx, void *p, size_t bytes),
                                  void *ctx) {
  size_t bytes = (size_t)l->o.batch_size * 3 * (size_t)l->o.views.size * (size_t)l->o.views.size *
                 sizeof(float);
  for (int k = 0; k < l->o.prefetch; k++)
    for (int v = 0; v < 2; v++) fn(ctx, l->slots[k].b.img[v], bytes);
}

loader_cursor loader_position(const loader *l) {
  loader_cursor c;
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  int64_t g = l->start + l->released + (l->holding ? 1 : 0);
  c.epoch = g / l->bpe, c.batch = g % l->bpe, c.skipped = l->skipped;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return c;
}

int64_t loader_skipped(const loader *l) {
  pthread_mutex_lock((pthread_mutex_t *)&l->mu);
  int64_t k = l->skipped;
  pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
  return k;
}

int64_t loader_batches_per_epoch(const loader *l) { return l->bpe; }

const char *loader_describe(const loader *l) { return l->desc; }

void loader_close(loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
  for (int t = 0; t < l->nthreads; t++) pthread_join(l->threads[t], NULL);
  for (int k = 0; k < l->o.prefetch; k++) {
    loader_batch *b = &l->slots[k].b;
    for (int i = 0; i < b->n; i++) view_pair_free(&b->pairs[i]);
    free(b->img[0]), free(b->img[1]), free(b->pairs), free(b->index), free(b->mix_index);
  }
  free(l->slots);
  free(l->threads);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv_work);
  pthread_cond_destroy(&l->cv_ready);
  if (l->ds) dataset_close(l->ds);
  free(l);
}
