// The batch loader (data/loader.h) and epoch sampler (data/sampler.h):
//  - batches are bit-identical with 1 and 3 worker threads (and across prefetch depths);
//  - a loader reopened at a saved cursor yields exactly the batches that followed;
//  - shuffle mode is a permutation per epoch; data-parallel ranks never share a position;
//  - every corruption class (load error, garbage / truncated / empty image, image size or mask
//    size disagreeing with the annotations) is skipped, replaced deterministically and counted;
//    a dataset with nothing readable stops the loader with a message instead of hanging;
//  - the real dataset reader end to end on a small synthetic SA-1B folder with broken files.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/rle.h"
#include "data/sampler.h"
#include "data/synth.h"
#include "harness.h"

// ---- an in-memory source with corruption classes

enum { OK = 0, LOAD_ERR, GARBAGE, TRUNCATED, EMPTY, IMG_SIZE, MASK_SIZE, PNG, NCLASSES };
static const char *class_name[NCLASSES] = {"ok", "load error", "garbage bytes", "truncated JPEG",
                                           "empty image", "image size != annotations",
                                           "mask size != image", "png (valid)"};

typedef struct {
  int h, w;
  uint8_t *jpeg, *png;
  size_t jpeg_n, png_n;
  int n_anns;
  rle masks[6];
  double boxes[6][4];
} tmpl;

typedef struct {
  int n;
  int *cls;
  tmpl t[4];
} mem_source;

static void make_tmpl(tmpl *t, int h, int w, uint64_t seed, int k) {
  t->h = h, t->w = w;
  image_u8 im = image_alloc(h, w);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        im.px[((int64_t)y * w + x) * 3 + c] = (uint8_t)(128 + 100 * sin(x / (9.0 + c + k) + y / (13.0 - c)));
  check_true("encode", image_encode_jpeg(&im, 90, &t->jpeg, &t->jpeg_n) == MASA_OK);
  char path[256];
  snprintf(path, sizeof path, "/tmp/masa_test_loader_%d_%d.png", (int)getpid(), k);
  check_true("png", image_write_png(&im, path) == MASA_OK);
  check_true("png read", file_read_all(path, &t->png, &t->png_n) == MASA_OK);
  unlink(path);
  image_free(&im);
  t->n_anns = 4 + k % 3;
  uint8_t *m = malloc((size_t)h * w);
  for (int a = 0; a < t->n_anns; a++) {
    double cx = w * rng_uniform(seed, 50 + k, 4 * a), cy = h * rng_uniform(seed, 50 + k, 4 * a + 1);
    double rx = 4 + w / 4 * rng_uniform(seed, 50 + k, 4 * a + 2), ry = 4 + h / 4 * rng_uniform(seed, 50 + k, 4 * a + 3);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        double u = (x + 0.5 - cx) / rx, v = (y + 0.5 - cy) / ry;
        m[(int64_t)y * w + x] = u * u + v * v <= 1;
      }
    rle_encode(m, h, w, &t->masks[a]);
    rle_bbox(&t->masks[a], t->boxes[a]);
  }
  free(m);
}

static int mem_load(void *ctx, int64_t idx, raw_sample *out) {
  mem_source *s = ctx;
  memset(out, 0, sizeof *out);
  int c = s->cls[idx];
  const tmpl *t = &s->t[idx % 4];
  snprintf(out->name, sizeof out->name, "mem_%lld (%s)", (long long)idx, class_name[c]);
  if (c == LOAD_ERR) return masa_error("%s: cannot read", out->name);
  out->index = idx;
  out->h = t->h, out->w = t->w;
  const uint8_t *src = c == PNG ? t->png : t->jpeg;
  size_t n = c == PNG ? t->png_n : t->jpeg_n;
  out->jpeg = malloc(n);
  memcpy(out->jpeg, src, n);
  out->jpeg_size = n;
  if (c == GARBAGE)
    for (size_t i = 0; i < n; i++) out->jpeg[i] = (uint8_t)rng_u32(1, 2, i);
  if (c == TRUNCATED) out->jpeg_size = n / 2;
  if (c == EMPTY) out->jpeg_size = 0;
  out->anns = calloc((size_t)t->n_anns, sizeof(annotation));
  out->n_anns = t->n_anns;
  for (int a = 0; a < t->n_anns; a++) {
    annotation *an = &out->anns[a];
    an->id = idx * 100 + a + 1;
    memcpy(an->bbox, t->boxes[a], sizeof an->bbox);
    an->has_mask = 1;
    rle_copy(&t->masks[a], &an->mask);
  }
  if (c == IMG_SIZE) {  // annotations and masks agree with each other, not with the image
    out->h += 16;
    for (int a = 0; a < t->n_anns; a++) {
      rle_free(&out->anns[a].mask);
      out->anns[a].has_mask = 0;
    }
  }
  if (c == MASK_SIZE) out->anns[0].mask.w += 1;
  return MASA_OK;
}

static mem_source g_src;

static sample_source source_with(int n, const int *cls) {
  g_src.n = n;
  free(g_src.cls);
  g_src.cls = calloc((size_t)n, sizeof(int));
  if (cls) memcpy(g_src.cls, cls, sizeof(int) * n);
  sample_source s = {&g_src, n, mem_load};
  return s;
}

static loader_opts small_opts(void) {
  loader_opts o;
  memset(&o, 0, sizeof o);
  views_opts_default(&o.views);
  o.views.size = 48;
  o.sampling = SAMPLE_RANDOM;
  o.epoch_length = 12;
  o.batch_size = 3;
  o.workers = 1;
  o.prefetch = 2;
  o.seed = 7;
  o.rank = 0, o.world = 1;
  o.max_replace = 20;
  return o;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static uint64_t batch_hash(const loader_batch *b) {
  uint64_t h = 1469598103934665603ull;
  size_t plane = (size_t)3 * b->size * b->size;
  h = fnv(h, b->img[0], sizeof(float) * plane * b->n);
  h = fnv(h, b->img[1], sizeof(float) * plane * b->n);
  h = fnv(h, b->index, sizeof(int64_t) * b->n);
  h = fnv(h, b->mix_index, sizeof(int64_t) * b->n);
  h = fnv(h, &b->skipped, sizeof b->skipped);
  h = fnv(h, &b->cursor, sizeof b->cursor);
  for (int i = 0; i < b->n; i++)
    for (int k = 0; k < 2; k++) {
      const view *v = &b->pairs[i].v[k];
      h = fnv(h, &v->n, sizeof v->n);
      h = fnv(h, v->boxes, sizeof(float) * 4 * v->n);
      h = fnv(h, v->ids, sizeof(int64_t) * v->n);
      h = fnv(h, &v->src_to_view, sizeof v->src_to_view);
    }
  return h;
}

// Hashes of `nb` batches from a loader with these options, starting at `start`.
static int run_hashes(const loader_opts *o, sample_source src, const loader_cursor *start, int nb,
                      uint64_t *hashes, loader_cursor *after, int64_t *skipped) {
  loader *l = loader_open_source(o, src, start);
  if (!l) {
    printf("  loader_open_source: %s\n", masa_errmsg());
    return 0;
  }
  for (int i = 0; i < nb; i++) {
    const loader_batch *b = loader_next(l);
    if (!b) {
      printf("  loader_next: %s\n", masa_errmsg());
      loader_close(l);
      return 0;
    }
    hashes[i] = batch_hash(b);
    if (after) after[i] = loader_position(l);
    if (skipped) skipped[i] = loader_skipped(l);
  }
  loader_close(l);
  return 1;
}

static void test_determinism_and_resume(void) {
  int cls[24];
  for (int i = 0; i < 24; i++) cls[i] = i % 7 == 3 ? LOAD_ERR : i % 11 == 5 ? GARBAGE : OK;
  sample_source src = source_with(24, cls);
  loader_opts o = small_opts();
  enum { NB = 7 };  // crosses two epoch boundaries (4 batches per epoch)
  uint64_t h1[NB], h3[NB], hp[NB];
  loader_cursor c1[NB];
  int64_t s1[NB], s3[NB];
  check_true("1 worker", run_hashes(&o, src, NULL, NB, h1, c1, s1));
  o.workers = 3;
  check_true("3 workers", run_hashes(&o, src, NULL, NB, h3, NULL, s3));
  check_true("1 vs 3 workers: bit-identical batches", memcmp(h1, h3, sizeof h1) == 0);
  check_true("1 vs 3 workers: same skip counts", memcmp(s1, s3, sizeof s1) == 0);
  o.prefetch = 1, o.workers = 2;
  check_true("prefetch 1", run_hashes(&o, src, NULL, NB, hp, NULL, NULL));
  check_true("prefetch 1 vs 2: bit-identical batches", memcmp(h1, hp, sizeof h1) == 0);
  check_true("cursor walks epochs", c1[3].epoch == 1 && c1[3].batch == 0 && c1[6].epoch == 1 && c1[6].batch == 3);
  check_true("some samples were skipped", s1[NB - 1] > 0);
  // Resume after batch 2 (cursor saved after taking it).
  o.workers = 2, o.prefetch = 3;
  uint64_t hr[NB - 3];
  int64_t sr[NB - 3];
  check_true("resume", run_hashes(&o, src, &c1[2], NB - 3, hr, NULL, sr));
  check_true("resumed loader yields the same following batches", memcmp(hr, h1 + 3, sizeof hr) == 0);
  check_true("resumed skip count continues", memcmp(sr, s1 + 3, sizeof sr) == 0);
  // Another seed gives other batches.
  o.seed = 8;
  uint64_t hs[2];
  run_hashes(&o, src, NULL, 2, hs, NULL, NULL);
  check_true("another seed: other batches", hs[0] != h1[0]);
}

static void test_sampling_and_shards(void) {
  // The Feistel permutation is a bijection for awkward sizes.
  int perm_ok = 1;
  int64_t sizes[] = {1, 2, 3, 5, 17, 64, 1000};
  for (int k = 0; k < 7; k++) {
    sampler s;
    sampler_init(&s, SAMPLE_SHUFFLE, sizes[k], 0, 99);
    for (int64_t e = 0; e < 2; e++) {
      char *seen = calloc((size_t)sizes[k], 1);
      for (int64_t p = 0; p < sizes[k]; p++) {
        int64_t i = sampler_main(&s, e, p, 0);
        if (i < 0 || i >= sizes[k] || seen[i]) perm_ok = 0;
        else seen[i] = 1;
      }
      free(seen);
    }
  }
  check_true("shuffle: a permutation of [0, n) per epoch (n = 1, 2, 3, 5, 17, 64, 1000)", perm_ok);
  sampler s;
  sampler_init(&s, SAMPLE_SHUFFLE, 1000, 0, 99);
  int differs = 0;
  for (int p = 0; p < 20; p++) differs |= sampler_main(&s, 0, p, 0) != sampler_main(&s, 1, p, 0);
  check_true("shuffle: epochs differ", differs);
  check_true("shuffle longer than the dataset is refused",
             sampler_init(&s, SAMPLE_SHUFFLE, 10, 11, 1) == MASA_ERR && strstr(masa_errmsg(), "at most 10"));

  // Two ranks, shuffled pass: together they visit every sample exactly once.
  sample_source src = source_with(24, NULL);
  loader_opts o = small_opts();
  o.sampling = SAMPLE_SHUFFLE, o.epoch_length = 0, o.world = 2, o.views.mixup = 0;
  int count[24] = {0};
  int ok = 1;
  for (int r = 0; r < 2; r++) {
    o.rank = r;
    loader *l = loader_open_source(&o, src, NULL);
    ok &= l != NULL && loader_batches_per_epoch(l) == 4;
    for (int b = 0; l && b < 4; b++) {
      const loader_batch *bt = loader_next(l);
      if (!bt) {
        ok = 0;
        break;
      }
      for (int i = 0; i < bt->n; i++) {
        count[bt->index[i]]++;
        ok &= bt->index[i] == sampler_main(&(sampler){SAMPLE_SHUFFLE, 24, 24, o.seed}, 0, (b * 3 + i) * 2 + r, 0);
      }
    }
    loader_close(l);
  }
  int once = 1;
  for (int i = 0; i < 24; i++) once &= count[i] == 1;
  check_true("2 ranks: positions (b*B + i)*world + rank", ok);
  check_true("2 ranks, shuffled epoch: every sample exactly once, no overlap", once);
}

static void test_corruption(void) {
  loader_opts o = small_opts();
  o.sampling = SAMPLE_SHUFFLE, o.epoch_length = 12, o.batch_size = 4, o.views.mixup = 0;
  for (int c = 1; c < NCLASSES; c++) {
    int cls[12] = {0};
    cls[5] = c;
    sample_source src = source_with(12, cls);
    loader *l = loader_open_source(&o, src, NULL);
    int got = 0;
    for (int b = 0; l && b < 3; b++) got += loader_next(l) != NULL;
    char what[160];
    int64_t want = c == PNG ? 0 : 1;
    snprintf(what, sizeof what, "%s: one epoch complete, %lld skipped", class_name[c], (long long)want);
    check_true(what, got == 3 && loader_skipped(l) == want);
    loader_close(l);
  }
  // Mixup partners can be bad too: every class at once, random sampling with mixup.
  int cls[14];
  for (int i = 0; i < 14; i++) cls[i] = i % NCLASSES;
  sample_source src = source_with(14, cls);
  o = small_opts();
  o.workers = 2;
  loader *l = loader_open_source(&o, src, NULL);
  int got = 0;
  int64_t batches_skipped = 0;
  for (int b = 0; l && b < 8; b++) {
    const loader_batch *bt = loader_next(l);
    if (!bt) break;
    got++;
    batches_skipped += bt->skipped;
    for (int i = 0; i < bt->n; i++) {
      int ci = cls[bt->index[i]];
      if (ci != OK && ci != PNG) got = -100;  // a bad sample made it into a batch
      if (bt->mix_index[i] >= 0 && cls[bt->mix_index[i]] != OK && cls[bt->mix_index[i]] != PNG) got = -100;
    }
  }
  printf("  all classes with mixup: %lld bad samples replaced in 8 batches\n", (long long)loader_skipped(l));
  check_true("all classes with mixup: 8 batches, no bad sample used", got == 8);
  check_true("skip count = sum of the batches' counts", loader_skipped(l) == batches_skipped && batches_skipped > 0);
  loader_close(l);
  // Nothing readable: the loader stops with a message.
  int bad[4] = {LOAD_ERR, GARBAGE, LOAD_ERR, TRUNCATED};
  src = source_with(4, bad);
  o = small_opts();
  o.max_replace = 5, o.epoch_length = 3;
  l = loader_open_source(&o, src, NULL);
  masa_errclear();
  check_true("nothing readable: loader_next fails", l && loader_next(l) == NULL);
  check_true("nothing readable: message", strstr(masa_errmsg(), "bad samples in a row") != NULL);
  check_true("nothing readable: stays failed", loader_next(l) == NULL);
  loader_close(l);
  // Bad options and cursors.
  o = small_opts();
  o.batch_size = 0;
  check_true("batch size 0 refused", loader_open_source(&o, source_with(4, NULL), NULL) == NULL &&
             strstr(masa_errmsg(), "data.batch_size"));
  o = small_opts();
  loader_cursor far = {0, 99, 0};
  check_true("cursor outside the epoch refused", loader_open_source(&o, source_with(24, NULL), &far) == NULL);
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(p, 1, n, f);
    fclose(f);
  }
}

static void test_real_dataset(void) {
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/masa_test_loader_%d", (int)getpid());
  synth_opts so;
  synth_default_opts(&so);
  so.n_images = 8, so.h = 96, so.w = 128, so.objects_min = 3, so.objects_max = 6;
  if (synth_sa1b(&so, dir) != MASA_OK) {
    check_true("synthetic SA-1B folder", 0);
    printf("  %s\n", masa_errmsg());
    return;
  }
  // Break two images after indexing would have seen them: a truncated JPEG and a JSON with a
  // bad RLE string.
  char path[512];
  uint8_t *buf;
  size_t n;
  snprintf(path, sizeof path, "%s/sa_3.jpg", dir);
  if (file_read_all(path, &buf, &n) == MASA_OK) {
    write_file(path, buf, n / 2);
    free(buf);
  }
  snprintf(path, sizeof path, "%s/sa_6.json", dir);
  if (file_read_all(path, &buf, &n) == MASA_OK) {
    char *c = strstr((char *)buf, "\"counts\"");
    if (c && (c = strchr(c + 8, '"'))) c[1] = c[2] = c[3] = '{';
    write_file(path, buf, n);
    free(buf);
  }
  loader_opts o = small_opts();
  o.path = dir;
  o.ds.load_masks = 1;
  o.ds.index_dir = dir;  // the index cache goes away with the folder
  o.sampling = SAMPLE_SHUFFLE, o.epoch_length = 8, o.batch_size = 4, o.workers = 2;
  o.views.id_map_stride = 8;
  loader *l = loader_open(&o, NULL);
  if (!l) printf("  loader_open: %s\n", masa_errmsg());
  check_true("SA-1B folder: loader opens", l != NULL);
  int got = 0, boxes = 0, maps = 1;
  for (int b = 0; l && b < 2; b++) {
    const loader_batch *bt = loader_next(l);
    if (!bt) {
      printf("  loader_next: %s\n", masa_errmsg());
      break;
    }
    got++;
    for (int i = 0; i < bt->n; i++)
      for (int k = 0; k < 2; k++) {
        boxes += bt->pairs[i].v[k].n;
        maps &= bt->pairs[i].v[k].id_map != NULL && bt->pairs[i].v[k].map_w == 6;
      }
  }
  if (l) printf("  SA-1B folder: %s; %lld skipped\n", loader_describe(l), (long long)loader_skipped(l));
  // Each of the two broken images is skipped whenever it is drawn (as a sample or as a mixup
  // partner): at least twice in a shuffled epoch.
  check_true("SA-1B folder with a truncated JPEG and a bad RLE: 2 batches, >= 2 skipped",
             got == 2 && loader_skipped(l) >= 2);
  check_true("SA-1B folder: boxes and id maps", boxes > 0 && maps);
  loader_close(l);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) printf("  (could not remove %s)\n", dir);
}

int main(void) {
  uint64_t seed = test_begin("loader", 20240614);
  log_set_level(LOG_ERROR);  // the skips below are expected; their warnings would flood the log
  make_tmpl(&g_src.t[0], 64, 80, seed, 0);
  make_tmpl(&g_src.t[1], 72, 60, seed, 1);
  make_tmpl(&g_src.t[2], 50, 90, seed, 2);
  make_tmpl(&g_src.t[3], 80, 80, seed, 3);
  test_determinism_and_resume();
  test_sampling_and_shards();
  test_corruption();
  test_real_dataset();
  for (int k = 0; k < 4; k++) {
    free(g_src.t[k].jpeg), free(g_src.t[k].png);
    for (int a = 0; a < g_src.t[k].n_anns; a++) rle_free(&g_src.t[k].masks[a]);
  }
  free(g_src.cls);
  return test_end();
}
