// Images and datasets.
// 1. Image decoding against OpenCV (tests/oracle_dataset.py): JPEG 4:2:0 / 4:4:4 / grayscale /
//    progressive at scale 1, 1/2, 1/4, 1/8 (DCT-domain scaling), CMYK, PNG RGB / RGBA / gray /
//    palette; corrupt, truncated, empty and foreign data give errors, not crashes.
// 2. One synthetic dataset (data/synth.h) opened as an SA-1B folder, as tar shards and as a COCO
//    JSON written from it: same samples and annotations in all three; index cache reused on the
//    second open and rebuilt when the source changes; parallel loads equal serial ones.
// 3. Corruption classes, each a clear error for its own sample while the others load: truncated
//    JPEG, garbage JSON, bad RLE string, missing image, size mismatch, zero-size members,
//    truncated tar, damaged tar header; degenerate annotations dropped and counted.
// Tolerances: the images were encoded by PIL/OpenCV and are decoded by the system's
// libjpeg-turbo 2.1 here and OpenCV's bundled libjpeg-turbo 3.0 in the oracle: same integer IDCT
// and upsampling, so exact equality is expected (atol 0); CMYK conversion formulas differ
// between libraries by rounding: atol 2.
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/rle.h"
#include "data/synth.h"
#include "data/tar.h"
#include "harness.h"

static char g_tmp[256];

// ---- small file helpers -----------------------------------------------------------------------

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopenCheck(path, "wb");
  if (n) fwriteCheck(data, 1, n, f);
  fcloseCheck(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
  uint8_t *b;
  if (file_read_all(path, &b, n) != MASA_OK) {
    fprintf(stderr, "test_dataset: %s\n", masa_errmsg());
    exit(1);
  }
  return b;
}

static void copy_file(const char *from, const char *to) {
  size_t n;
  uint8_t *b = read_bytes(from, &n);
  write_bytes(to, b, n);
  free(b);
}

static cJSON *read_json(const char *path) {
  size_t n;
  uint8_t *b = read_bytes(path, &n);
  cJSON *j = cJSON_ParseWithLength((const char *)b, n);
  masa_assert(j);
  free(b);
  return j;
}

static void write_json(const char *path, const cJSON *j) {
  char *s = cJSON_PrintUnformatted(j);
  write_bytes(path, s, strlen(s));
  free(s);
}

static void rm_rf(const char *path) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

// Expects MASA_ERR whose message contains every needle.
static void expect_fail(const char *label, int rc, const char *n1, const char *n2) {
  const char *m = masa_errmsg();
  int ok = rc == MASA_ERR && strstr(m, n1) && (!n2 || strstr(m, n2));
  printf("    -> %s\n", rc == MASA_ERR ? m : "(no error)");
  check_true(label, ok);
}

// ---- 1. images --------------------------------------------------------------------------------

static int cmp_image(const image_u8 *im, const float *ref, int64_t h, int64_t w, double atol, double *max_err) {
  *max_err = 0;
  if (im->h != h || im->w != w) return 0;
  for (int64_t i = 0; i < h * w * 3; i++) {
    double e = fabs((double)im->px[i] - ref[i]);
    if (e > *max_err) *max_err = e;
  }
  return *max_err <= atol;
}

static void test_images(const char *oracle) {
  printf("-- images against OpenCV\n");
  h5file *f = oracle_open(oracle);
  char dir[512], path[600], label[128];
  snprintf(dir, sizeof dir, "%s.files", oracle);
  const char *jpgs[] = {"c420.jpg", "c444.jpg", "gray.jpg", "prog.jpg", "cmyk.jpg"};
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, jpgs[i]);
    size_t n;
    uint8_t *buf = read_bytes(path, &n);
    int ph, pw;
    check_true("probe", image_probe(buf, n, &ph, &pw, jpgs[i]) == MASA_OK && ph == 97 && pw == 131);
    double atol = strstr(jpgs[i], "cmyk") ? 2 : 0;
    for (int denom = 1; denom <= 8; denom *= 2) {
      char name[64];
      if (denom == 1) snprintf(name, sizeof name, "%s", jpgs[i]);
      else snprintf(name, sizeof name, "%s_d%d", jpgs[i], denom);
      int64_t shape[TENSOR_MAX_DIMS], numel;
      int nd;
      float *ref = oracle_read_any(f, name, &numel, &nd, shape);
      image_u8 im;
      int rc = image_decode(buf, n, denom, &im, jpgs[i]);
      double err = -1;
      int ok = rc == MASA_OK && cmp_image(&im, ref, shape[0], shape[1], atol, &err);
      snprintf(label, sizeof label, "%s 1/%d: %dx%d, max |err| %.0f <= %.0f", jpgs[i], denom, im.h, im.w, err, atol);
      if (rc != MASA_OK) printf("    %s\n", masa_errmsg());
      check_true(label, ok && im.h == (97 + denom - 1) / denom && im.w == (131 + denom - 1) / denom);
      image_free(&im);
      free(ref);
    }
    free(buf);
  }
  const char *pngs[] = {"rgb.png", "rgba.png", "gray.png", "pal.png"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, pngs[i]);
    size_t n;
    uint8_t *buf = read_bytes(path, &n);
    int64_t shape[TENSOR_MAX_DIMS], numel;
    int nd;
    float *ref = oracle_read_any(f, pngs[i], &numel, &nd, shape);
    image_u8 im;
    double err = -1;
    int ok = image_decode(buf, n, 4, &im, pngs[i]) == MASA_OK && cmp_image(&im, ref, shape[0], shape[1], 0, &err);
    snprintf(label, sizeof label, "%s (scale ignored): exact", pngs[i]);
    check_true(label, ok);
    int ph, pw;
    check_true("png probe", image_probe(buf, n, &ph, &pw, pngs[i]) == MASA_OK && ph == 97 && pw == 131);
    image_free(&im);
    free(ref);
    free(buf);
  }
  h5_close(f);

  printf("-- corrupt images\n");
  snprintf(path, sizeof path, "%s/c420.jpg", dir);
  size_t n;
  uint8_t *buf = read_bytes(path, &n);
  image_u8 im;
  check_true("complete JPEG passes the truncation check", image_check_complete(buf, n, "c420.jpg") == MASA_OK);
  expect_fail("truncated JPEG: decode error", image_decode(buf, n * 6 / 10, 1, &im, "cut.jpg"), "cut.jpg", "JPEG");
  expect_fail("truncated JPEG: quick check", image_check_complete(buf, n * 6 / 10, "cut.jpg"), "cut.jpg", "truncated");
  expect_fail("JPEG cut inside its header", image_decode(buf, 40, 1, &im, "head.jpg"), "head.jpg", "JPEG");
  expect_fail("empty data", image_decode(buf, 0, 1, &im, "empty.jpg"), "empty.jpg", "empty");
  uint8_t junk[64];
  for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
  expect_fail("foreign bytes", image_decode(junk, sizeof junk, 1, &im, "junk.bin"), "junk.bin", "not a JPEG or PNG");
  expect_fail("bad scale", image_decode(buf, n, 3, &im, "c420.jpg"), "c420.jpg", "scale_denom");
  // Scrambled entropy data: an error or a (garbled) image, never a crash.
  int crashes = 0;
  for (int t = 0; t < 20; t++) {
    uint8_t *bad = mallocCheck(n);
    memcpy(bad, buf, n);
    for (int k = 0; k < 16; k++) bad[n / 2 + (size_t)((t * 131 + k * 17) % (int)(n / 3))] ^= (uint8_t)(0x55 + t + k);
    int rc = image_decode(bad, n, 1, &im, "scrambled.jpg");
    if (rc == MASA_OK) image_free(&im);
    crashes += rc != MASA_OK && rc != MASA_ERR;
    free(bad);
  }
  check_true("20 scrambled JPEGs: no crash", crashes == 0);
  free(buf);
  snprintf(path, sizeof path, "%s/rgb.png", dir);
  buf = read_bytes(path, &n);
  expect_fail("truncated PNG: decode error", image_decode(buf, n / 2, 1, &im, "cut.png"), "cut.png", "PNG");
  expect_fail("truncated PNG: quick check", image_check_complete(buf, n / 2, "cut.png"), "cut.png", "truncated");
  free(buf);

  printf("-- encode, write, pick_denom\n");
  image_u8 src = image_alloc(37, 53);
  for (int64_t i = 0; i < 37 * 53; i++)
    for (int c = 0; c < 3; c++) src.px[i * 3 + c] = (uint8_t)(120 + 70 * sin(0.05 * (double)(i % 53) + c) + 30 * cos(0.08 * (double)(i / 53)));
  uint8_t *jb;
  size_t jn;
  check_true("encode JPEG", image_encode_jpeg(&src, 95, &jb, &jn) == MASA_OK);
  double se = 0;
  int dec_ok = image_decode(jb, jn, 1, &im, "enc.jpg") == MASA_OK && im.h == 37 && im.w == 53;
  for (int64_t i = 0; dec_ok && i < 37 * 53 * 3; i++) se += pow((double)im.px[i] - src.px[i], 2);
  double psnr = 10 * log10(255.0 * 255.0 / (se / (37 * 53 * 3) + 1e-12));
  snprintf(label, sizeof label, "JPEG q95 round trip PSNR %.1f dB > 35", psnr);
  check_true(label, dec_ok && psnr > 35);
  if (dec_ok) image_free(&im);
  free(jb);
  snprintf(path, sizeof path, "%s/rt.png", g_tmp);
  check_true("write PNG", image_write_png(&src, path) == MASA_OK);
  buf = read_bytes(path, &n);
  check_true("PNG round trip exact", image_decode(buf, n, 1, &im, path) == MASA_OK &&
                                         !memcmp(im.px, src.px, 37 * 53 * 3));
  image_free(&im);
  free(buf);
  snprintf(path, sizeof path, "%s/nodir/x.jpg", g_tmp);
  expect_fail("write into a missing folder", image_write_jpeg(&src, 90, path), "x.jpg", "cannot create");
  image_free(&src);
  check_true("pick_denom", image_pick_denom(2.0) == 1 && image_pick_denom(1.0) == 1 && image_pick_denom(0.5) == 2 &&
                               image_pick_denom(0.3) == 2 && image_pick_denom(0.25) == 4 &&
                               image_pick_denom(0.125) == 8 && image_pick_denom(0.01) == 8);

  // Timing at SA-1B size.
  snprintf(path, sizeof path, "%s/big.jpg", dir);
  buf = read_bytes(path, &n);
  for (int denom = 1; denom <= 4; denom *= 4) {
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
      double t0 = time_now();
      masa_assert(image_decode(buf, n, denom, &im, "big.jpg") == MASA_OK);
      double t = time_now() - t0;
      if (t < best) best = t;
      image_free(&im);
    }
    printf("  timing: decode 1500x2250 JPEG (%.2f MB) at 1/%d: %.1f ms (1 thread)\n", n / 1e6, denom, 1e3 * best);
  }
  free(buf);
}

// ---- 2. the same data three ways ---------------------------------------------------------------

typedef struct {
  raw_sample *s;
  int64_t n;
  int failed;
} sample_set;

static sample_set load_all(dataset *d) {
  sample_set ss = {0};
  ss.n = dataset_size(d);
  ss.s = callocCheck((size_t)ss.n, sizeof(raw_sample));
  for (int64_t i = 0; i < ss.n; i++)
    if (dataset_load(d, i, &ss.s[i]) != MASA_OK) {
      printf("    load %lld: %s\n", (long long)i, masa_errmsg());
      ss.failed++;
    }
  return ss;
}

static void free_set(sample_set *ss) {
  for (int64_t i = 0; i < ss->n; i++) raw_sample_free(&ss->s[i]);
  free(ss->s);
}

static int same_rle(const rle *a, const rle *b) {
  return a->h == b->h && a->w == b->w && a->m == b->m && !memcmp(a->cnts, b->cnts, (size_t)a->m * sizeof(uint32_t));
}

// Same samples: names, sizes, annotations (ids, boxes, masks); image bytes too if `bytes`.
static int same_samples(const sample_set *a, const sample_set *b, int bytes, int masks) {
  if (a->n != b->n) return 0;
  for (int64_t i = 0; i < a->n; i++) {
    const raw_sample *p = &a->s[i], *q = &b->s[i];
    if (strcmp(p->name, q->name) || p->h != q->h || p->w != q->w || p->n_anns != q->n_anns) {
      printf("    sample %lld differs: %s %dx%d %d anns vs %s %dx%d %d anns\n", (long long)i, p->name, p->h, p->w,
             p->n_anns, q->name, q->h, q->w, q->n_anns);
      return 0;
    }
    if (bytes && (p->jpeg_size != q->jpeg_size || memcmp(p->jpeg, q->jpeg, p->jpeg_size))) return 0;
    for (int k = 0; k < p->n_anns; k++) {
      const annotation *x = &p->anns[k], *y = &q->anns[k];
      if (x->id != y->id || memcmp(x->bbox, y->bbox, sizeof x->bbox)) return 0;
      if (masks && (x->has_mask != y->has_mask || (x->has_mask && !same_rle(&x->mask, &y->mask)))) return 0;
    }
  }
  return 1;
}

static void write_coco_from(const sample_set *ss, const char *path) {
  cJSON *root = cJSON_CreateObject(), *images = cJSON_AddArrayToObject(root, "images"),
        *anns = cJSON_AddArrayToObject(root, "annotations");
  cJSON_AddArrayToObject(root, "categories");
  int64_t k = 0;
  for (int64_t i = 0; i < ss->n; i++) {
    const raw_sample *s = &ss->s[i];
    cJSON *im = cJSON_CreateObject();
    char fn[300];
    snprintf(fn, sizeof fn, "%s.jpg", s->name);
    cJSON_AddNumberToObject(im, "id", (double)(i + 1));
    cJSON_AddStringToObject(im, "file_name", fn);
    cJSON_AddNumberToObject(im, "width", s->w);
    cJSON_AddNumberToObject(im, "height", s->h);
    cJSON_AddItemToArray(images, im);
    for (int j = 0; j < s->n_anns; j++, k++) {
      const annotation *a = &s->anns[j];
      cJSON *an = cJSON_CreateObject(), *seg = cJSON_CreateObject(), *size = cJSON_CreateArray();
      cJSON_AddNumberToObject(an, "id", (double)a->id);
      cJSON_AddNumberToObject(an, "image_id", (double)(i + 1));
      cJSON_AddNumberToObject(an, "category_id", 1);
      cJSON_AddNumberToObject(an, "iscrowd", 0);
      cJSON_AddItemToObject(an, "bbox", cJSON_CreateDoubleArray(a->bbox, 4));
      cJSON_AddItemToArray(size, cJSON_CreateNumber(s->h));
      cJSON_AddItemToArray(size, cJSON_CreateNumber(s->w));
      cJSON_AddItemToObject(seg, "size", size);
      if (k % 2 == 0) {  // compressed string
        char *str = rle_to_string(&a->mask);
        cJSON_AddStringToObject(seg, "counts", str);
        free(str);
      } else {  // uncompressed counts
        cJSON *c = cJSON_CreateArray();
        for (int64_t r = 0; r < a->mask.m; r++) cJSON_AddItemToArray(c, cJSON_CreateNumber(a->mask.cnts[r]));
        cJSON_AddItemToObject(seg, "counts", c);
      }
      cJSON_AddItemToObject(an, "segmentation", seg);
      cJSON_AddItemToArray(anns, an);
    }
  }
  write_json(path, root);
  cJSON_Delete(root);
}

static dataset *open_or_die(const char *path, const dataset_opts *o) {
  dataset *d = dataset_open(path, o);
  if (!d) {
    printf("    open %s: %s\n", path, masa_errmsg());
    check_true("dataset opens", 0);
    exit(test_end());
  }
  return d;
}

static void set_mtime(const char *path, long sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  masa_assert(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static void test_three_ways(uint64_t seed) {
  printf("-- one dataset as folder, tar shards and COCO JSON\n");
  char folder[512], shards[512], coco[512], idx[512], path[1200], label[200];
  snprintf(folder, sizeof folder, "%s/folder", g_tmp);
  snprintf(shards, sizeof shards, "%s/shards", g_tmp);
  snprintf(idx, sizeof idx, "%s/idx", g_tmp);
  synth_opts so;
  synth_default_opts(&so);
  so.seed = seed;
  so.n_images = 11;  // natural order matters from 10 on
  so.h = 72;
  so.w = 96;
  so.objects_min = 2;
  so.objects_max = 9;
  check_true("synth folder", synth_sa1b(&so, folder) == MASA_OK);
  so.per_shard = 4;
  check_true("synth tar shards (4 per shard)", synth_sa1b(&so, shards) == MASA_OK);

  dataset_opts o = {.load_masks = 1};
  dataset *df = open_or_die(folder, &o);
  printf("    %s\n", dataset_describe(df));
  check_true("folder: 11 images, index built", dataset_size(df) == 11 && !dataset_index_reused(df));
  sample_set a = load_all(df);
  check_true("folder: all samples load", a.failed == 0);
  check_true("folder: natural order sa_1, sa_2, ..., sa_10, sa_11",
             !strcmp(a.s[0].name, "sa_1") && !strcmp(a.s[1].name, "sa_2") && !strcmp(a.s[9].name, "sa_10"));
  // Boxes: SA-1B files store [x, y, x_max - x_min, y_max - y_min]; we return pycocotools boxes.
  snprintf(path, sizeof path, "%s/sa_2.json", folder);
  cJSON *j = read_json(path);
  cJSON *list = cJSON_GetObjectItem(j, "annotations");
  int box_ok = cJSON_GetArraySize(list) == a.s[1].n_anns && a.s[1].n_anns > 0, k = 0;
  for (cJSON *an = list->child; an && box_ok; an = an->next, k++) {
    cJSON *bb = cJSON_GetObjectItem(an, "bbox");
    const double *g = a.s[1].anns[k].bbox;
    box_ok = g[0] == cJSON_GetArrayItem(bb, 0)->valuedouble && g[1] == cJSON_GetArrayItem(bb, 1)->valuedouble &&
             g[2] == cJSON_GetArrayItem(bb, 2)->valuedouble + 1 && g[3] == cJSON_GetArrayItem(bb, 3)->valuedouble + 1 &&
             a.s[1].anns[k].id == (int64_t)cJSON_GetObjectItem(an, "id")->valuedouble &&
             rle_area(&a.s[1].anns[k].mask) == (int64_t)cJSON_GetObjectItem(an, "area")->valuedouble;
  }
  cJSON_Delete(j);
  check_true("SA-1B bbox convention: file box + 1 = mask box; ids, areas", box_ok);
  int64_t total = 0;
  for (int64_t i = 0; i < a.n; i++) total += a.s[i].n_anns;
  snprintf(label, sizeof label, "folder: %lld annotations in 11 images", (long long)total);
  check_true(label, total > 11);

  dataset *dt = open_or_die(shards, &o);
  printf("    %s\n", dataset_describe(dt));
  sample_set b = load_all(dt);
  check_true("tar: 3 shards, same samples, annotations, masks and bytes",
             b.failed == 0 && strstr(dataset_describe(dt), "3 files") && same_samples(&a, &b, 1, 1));

  snprintf(coco, sizeof coco, "%s/instances.json", g_tmp);
  write_coco_from(&a, coco);
  dataset_opts oc = {.load_masks = 1, .image_root = folder};
  dataset *dc = open_or_die(coco, &oc);
  printf("    %s\n", dataset_describe(dc));
  sample_set c = load_all(dc);
  // COCO names are file_names: compare without them.
  for (int64_t i = 0; i < c.n; i++) {
    char *dot = strrchr(c.s[i].name, '.');
    if (dot) *dot = 0;
  }
  check_true("COCO (string and list counts): same samples and masks", c.failed == 0 && same_samples(&a, &c, 1, 1));

  dataset_opts nm = {.load_masks = 0};
  dataset *dn = open_or_die(shards, &nm);
  sample_set bn = load_all(dn);
  int no_masks = bn.failed == 0 && same_samples(&a, &bn, 1, 0);
  for (int64_t i = 0; i < bn.n; i++)
    for (int q = 0; q < bn.s[i].n_anns; q++) no_masks &= !bn.s[i].anns[q].has_mask;
  check_true("load_masks = 0: same boxes, no masks, index reused", no_masks && dataset_index_reused(dn));
  free_set(&bn);
  dataset_close(dn);

  // Parallel loads equal serial ones.
  sample_set p = {.n = dataset_size(dt)};
  p.s = callocCheck((size_t)p.n, sizeof(raw_sample));
  int fails = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : fails)
  for (int64_t i = 0; i < p.n; i++) fails += dataset_load(dt, i, &p.s[i]) != MASA_OK;
  check_true("parallel loads (2 threads) equal serial", fails == 0 && same_samples(&b, &p, 1, 1));
  free_set(&p);

  // Index cache: reused on reopen, rebuilt when the source changes.
  dataset_close(df);
  dataset_close(dt);
  dataset_close(dc);
  df = open_or_die(folder, &o);
  dt = open_or_die(shards, &o);
  dc = open_or_die(coco, &oc);
  check_true("second open reuses the index (folder, tar, COCO)",
             dataset_index_reused(df) && dataset_index_reused(dt) && dataset_index_reused(dc));
  sample_set b2 = load_all(dt);
  check_true("reused tar index loads the same samples", b2.failed == 0 && same_samples(&b, &b2, 1, 1));
  free_set(&b2);
  dataset_close(df);
  dataset_close(dt);
  dataset_close(dc);
  char from[700], to[700];
  snprintf(from, sizeof from, "%s/sa_1.json", folder);
  snprintf(to, sizeof to, "%s/sa_100.json", folder);
  copy_file(from, to);
  snprintf(from, sizeof from, "%s/sa_1.jpg", folder);
  snprintf(to, sizeof to, "%s/sa_100.jpg", folder);
  copy_file(from, to);
  snprintf(path, sizeof path, "%s/sa_000001.tar", shards);
  set_mtime(path, 1000000000);
  set_mtime(coco, 1000000000);
  df = open_or_die(folder, &o);
  dt = open_or_die(shards, &o);
  dc = open_or_die(coco, &oc);
  check_true("changed sources rebuild the index (folder gains sa_100)",
             !dataset_index_reused(df) && !dataset_index_reused(dt) && !dataset_index_reused(dc) &&
                 dataset_size(df) == 12);
  dataset_close(df);
  dataset_close(dt);
  dataset_close(dc);
  // A damaged cache file is rebuilt, not trusted.
  snprintf(path, sizeof path, "%s.masa-index", shards);
  size_t n;
  uint8_t *ib = read_bytes(path, &n);
  ib[n / 2] ^= 0xff;
  write_bytes(path, ib, n);
  free(ib);
  dt = open_or_die(shards, &o);
  check_true("damaged index file is rebuilt", !dataset_index_reused(dt) && dataset_size(dt) == 11);
  dataset_close(dt);
  // index_dir and a glob of shards.
  masa_assert(make_dirs(idx) == MASA_OK);
  dataset_opts oi = {.load_masks = 1, .index_dir = idx};
  snprintf(path, sizeof path, "%s/sa_00000[02].tar,%s/sa_000001.tar", shards, shards);
  dt = open_or_die(path, &oi);
  printf("    %s (index %s)\n", dataset_describe(dt), dataset_index_path(dt));
  check_true("glob + list of shards: 11 images, index in index_dir",
             dataset_size(dt) == 11 && !strncmp(dataset_index_path(dt), idx, strlen(idx)));
  dataset_close(dt);
  free_set(&a);
  free_set(&b);
  free_set(&c);
}

// ---- 3. corruption ----------------------------------------------------------------------------

static int64_t find(dataset *d, const char *name) {
  raw_sample s;
  for (int64_t i = 0; i < dataset_size(d); i++) {
    int rc = dataset_load(d, i, &s);
    int hit = rc == MASA_OK ? !strcmp(s.name, name) : 0;
    if (rc == MASA_OK) raw_sample_free(&s);
    if (hit) return i;
  }
  return -1;
}

static void test_corrupt_folder(uint64_t seed) {
  printf("-- corrupt SA-1B folder\n");
  char dir[512], p[700];
  snprintf(dir, sizeof dir, "%s/bad", g_tmp);
  synth_opts so;
  synth_default_opts(&so);
  so.seed = seed + 1;
  so.n_images = 8;
  so.h = 64;
  so.w = 80;
  so.objects_min = 3;
  so.objects_max = 6;
  masa_assert(synth_sa1b(&so, dir) == MASA_OK);
  size_t n;
  uint8_t *b;
  // sa_1: truncated JPEG
  snprintf(p, sizeof p, "%s/sa_1.jpg", dir);
  b = read_bytes(p, &n);
  write_bytes(p, b, n / 2);
  free(b);
  // sa_2: garbage JSON
  snprintf(p, sizeof p, "%s/sa_2.json", dir);
  write_bytes(p, "{\"image\": {\"width\": 80,, ]", 27);
  // sa_3: bad RLE string in annotation 1
  snprintf(p, sizeof p, "%s/sa_3.json", dir);
  cJSON *j = read_json(p), *an = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "annotations"), 1);
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(an, "segmentation"), "counts", cJSON_CreateString("52 bad"));
  write_json(p, j);
  cJSON_Delete(j);
  // sa_4: missing image
  snprintf(p, sizeof p, "%s/sa_4.jpg", dir);
  unlink(p);
  // sa_5: an extra annotation whose mask is empty: dropped and counted
  snprintf(p, sizeof p, "%s/sa_5.json", dir);
  j = read_json(p);
  cJSON *anns = cJSON_GetObjectItem(j, "annotations");
  int n5 = cJSON_GetArraySize(anns);
  cJSON *e = cJSON_Parse("{\"id\": 99999, \"segmentation\": {\"size\": [64, 80], \"counts\": [5120]}, \"bbox\": [0, 0, 0, 0]}");
  cJSON_AddItemToArray(anns, e);
  write_json(p, j);
  cJSON_Delete(j);
  // sa_6: JSON says another image size
  snprintf(p, sizeof p, "%s/sa_6.json", dir);
  j = read_json(p);
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "image"), "width", cJSON_CreateNumber(81));
  write_json(p, j);
  cJSON_Delete(j);
  // sa_7: duplicate annotation id
  snprintf(p, sizeof p, "%s/sa_7.json", dir);
  j = read_json(p);
  anns = cJSON_GetObjectItem(j, "annotations");
  cJSON_ReplaceItemInObject(cJSON_GetArrayItem(anns, 1), "id",
                            cJSON_CreateNumber(cJSON_GetObjectItem(cJSON_GetArrayItem(anns, 0), "id")->valuedouble));
  write_json(p, j);
  cJSON_Delete(j);
  // an image without JSON is skipped
  snprintf(p, sizeof p, "%s/lonely.jpg", dir);
  write_bytes(p, "x", 1);

  dataset_opts o = {.load_masks = 1};
  dataset *d = open_or_die(dir, &o);
  check_true("8 samples (lonely.jpg without JSON skipped)", dataset_size(d) == 8);
  raw_sample s;
  expect_fail("truncated JPEG", dataset_load(d, 0, &s), "sa_1.jpg", "truncated");
  expect_fail("garbage JSON", dataset_load(d, 1, &s), "sa_2.json", "malformed JSON");
  expect_fail("bad RLE string", dataset_load(d, 2, &s), "sa_3.json: annotation 1 (id", "invalid character");
  expect_fail("missing image", dataset_load(d, 3, &s), "sa_4.json", "image not found");
  int ok5 = dataset_load(d, 4, &s) == MASA_OK;
  check_true("empty-mask annotation dropped and counted", ok5 && s.n_anns == n5 && s.n_dropped == 1);
  if (ok5) raw_sample_free(&s);
  expect_fail("image size in JSON disagrees with its masks", dataset_load(d, 5, &s), "sa_6.json", "image size");
  expect_fail("duplicate annotation id", dataset_load(d, 6, &s), "sa_7.json", "duplicate annotation id");
  int ok8 = dataset_load(d, 7, &s) == MASA_OK;
  check_true("intact sample sa_8 loads", ok8 && !strcmp(s.name, "sa_8") && s.n_anns > 0);
  if (ok8) raw_sample_free(&s);
  expect_fail("index out of range", dataset_load(d, 8, &s), "out of range", NULL);
  dataset_close(d);
  masa_assert(find == find);
}

static void test_corrupt_tar(void) {
  printf("-- corrupt tar shards\n");
  char src[512], p[700], tarp[700], name[64];
  snprintf(src, sizeof src, "%s/bad", g_tmp);  // sa_8 there is intact
  size_t jn, sn;
  snprintf(p, sizeof p, "%s/sa_8.jpg", src);
  uint8_t *jpg = read_bytes(p, &jn);
  snprintf(p, sizeof p, "%s/sa_8.json", src);
  uint8_t *js = read_bytes(p, &sn);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/badtar", g_tmp);
  masa_assert(make_dirs(dir) == MASA_OK);
  snprintf(tarp, sizeof tarp, "%s/sa_000000.tar", dir);
  tar_writer tw;
  masa_assert(tar_writer_open(&tw, tarp) == MASA_OK);
  for (int i = 1; i <= 4; i++) {
    snprintf(name, sizeof name, "sa_%d.jpg", i);
    masa_assert(tar_writer_add(&tw, name, jpg, i == 2 ? 0 : jn) == MASA_OK);  // sa_2.jpg: zero-size
    snprintf(name, sizeof name, "sa_%d.json", i);
    masa_assert(tar_writer_add(&tw, name, js, i == 3 ? 0 : sn) == MASA_OK);  // sa_3.json: zero-size
  }
  masa_assert(tar_writer_close(&tw) == MASA_OK);
  // Truncate inside the data of the last member (sa_4.json).
  size_t n;
  uint8_t *all = read_bytes(tarp, &n);
  write_bytes(tarp, all, n - 1024 - (sn + 511) / 512 * 512 + sn / 2);
  free(all);
  dataset_opts o = {.load_masks = 1};
  dataset *d = open_or_die(tarp, &o);
  check_true("truncated shard still lists its 4 samples", dataset_size(d) == 4);
  raw_sample s;
  int ok = dataset_load(d, 0, &s) == MASA_OK;
  check_true("intact member pair loads", ok && s.n_anns > 0);
  if (ok) raw_sample_free(&s);
  expect_fail("zero-size image member", dataset_load(d, 1, &s), "sa_000000.tar:sa_2.jpg", "empty");
  expect_fail("zero-size JSON member", dataset_load(d, 2, &s), "sa_000000.tar:sa_3.json", "empty");
  expect_fail("truncated tar", dataset_load(d, 3, &s), "sa_4.json", "truncated");
  dataset_close(d);

  // A damaged header ends the scan; the members before it stay usable.
  snprintf(tarp, sizeof tarp, "%s/hdr.tar", g_tmp);
  masa_assert(tar_writer_open(&tw, tarp) == MASA_OK);
  for (int i = 1; i <= 3; i++) {
    snprintf(name, sizeof name, "sa_%d.jpg", i);
    masa_assert(tar_writer_add(&tw, name, jpg, jn) == MASA_OK);
    snprintf(name, sizeof name, "sa_%d.json", i);
    masa_assert(tar_writer_add(&tw, name, js, sn) == MASA_OK);
  }
  // A member with a name of 100+ bytes (GNU long name record) is read back by its full name.
  char longname[160];
  memset(longname, 'd', 120);
  strcpy(longname + 120, "/sa_9.json");
  masa_assert(tar_writer_add(&tw, longname, js, sn) == MASA_OK);
  masa_assert(tar_writer_close(&tw) == MASA_OK);
  tar_member *tm;
  int64_t nt;
  char warn[512];
  check_true("long member name survives", tar_scan(tarp, &tm, &nt, warn, sizeof warn) == MASA_OK && nt == 7 &&
                                              !strcmp(tm[6].name, longname) && !warn[0]);
  tar_members_free(tm, nt);
  all = read_bytes(tarp, &n);
  size_t second = 512 + (jn + 511) / 512 * 512 + 512 + (sn + 511) / 512 * 512;  // header of sa_2.jpg
  all[second + 3] ^= 0x21;
  write_bytes(tarp, all, n);
  free(all);
  d = open_or_die(tarp, &o);
  check_true("damaged header: members before it kept (1 sample)", dataset_size(d) == 1);
  dataset_close(d);
  check_true("tar_scan warns about the damaged header",
             tar_scan(tarp, &tm, &nt, warn, sizeof warn) == MASA_OK && nt == 2 && strstr(warn, "checksum"));
  tar_members_free(tm, nt);
  // The system tar reads our archives (when installed).
  if (system("command -v tar >/dev/null 2>&1") == 0) {
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "tar tf '%s/shards/sa_000000.tar' > '%s/list.txt' 2>&1", g_tmp, g_tmp);
    int rc = system(cmd);
    snprintf(p, sizeof p, "%s/list.txt", g_tmp);
    uint8_t *txt = read_bytes(p, &n);
    check_true("system tar lists our shard", rc == 0 && !strncmp((char *)txt, "sa_1.jpg\nsa_1.json\nsa_2.jpg", 26));
    free(txt);
    // Archives written by GNU tar ("./" prefixes, gnu and pax formats) read the same.
    const char *formats[] = {"gnu", "pax"};
    for (int f = 0; f < 2; f++) {
      snprintf(cmd, sizeof cmd, "tar -C '%s/folder' --format=%s -cf '%s/sys_%s.tar' . 2>/dev/null", g_tmp,
               formats[f], g_tmp, formats[f]);
      if (system(cmd) != 0) continue;
      snprintf(p, sizeof p, "%s/sys_%s.tar", g_tmp, formats[f]);
      d = open_or_die(p, &o);
      raw_sample s1;
      int64_t k1 = -1;
      for (int64_t i = 0; i < dataset_size(d) && k1 < 0; i++) {
        if (dataset_load(d, i, &s1) != MASA_OK) break;
        if (!strcmp(s1.name, "sa_10")) k1 = i;
        raw_sample_free(&s1);
      }
      char what[96];
      snprintf(what, sizeof what, "GNU tar --format=%s archive: 12 samples load, names without ./", formats[f]);
      check_true(what, dataset_size(d) == 12 && k1 >= 0);
      dataset_close(d);
    }
  }
  free(jpg);
  free(js);
}

static void test_coco_cases(void) {
  printf("-- COCO: polygons, boxes, crowd, degenerate, bad and missing\n");
  char json[700], folder[512];
  snprintf(folder, sizeof folder, "%s/folder", g_tmp);
  snprintf(json, sizeof json, "%s/coco_cases.json", g_tmp);
  const char *text =
      "{\"images\": [{\"id\": 1, \"file_name\": \"sa_1.jpg\", \"width\": 96, \"height\": 72},"
      " {\"id\": 2, \"file_name\": \"sa_2.jpg\", \"width\": 96, \"height\": 72},"
      " {\"id\": 3, \"file_name\": \"missing.jpg\", \"width\": 96, \"height\": 72},"
      " {\"id\": 4, \"file_name\": \"sa_3.jpg\", \"width\": 95, \"height\": 72},"
      " {\"id\": 5, \"file_name\": \"sa_4.jpg\", \"width\": 96, \"height\": 72}],"
      " \"annotations\": ["
      " {\"id\": 501, \"image_id\": 1, \"bbox\": [10.2, 5.5, 30.1, 20], \"iscrowd\": 0,"
      "  \"segmentation\": [[10.2, 5.5, 40.3, 5.5, 25.7, 25.5], [50, 50, 60, 50, 60, 60, 50, 60]]},"
      " {\"id\": 502, \"image_id\": 1, \"bbox\": [2, 3, 10, 12], \"iscrowd\": 0},"
      " {\"id\": 503, \"image_id\": 1, \"bbox\": [0, 0, 5, 5], \"iscrowd\": 1,"
      "  \"segmentation\": {\"size\": [72, 96], \"counts\": [0, 5, 6907]}},"
      " {\"id\": 504, \"image_id\": 1, \"bbox\": [5, 5, 0.5, 3], \"iscrowd\": 0},"
      " {\"id\": 505, \"image_id\": 1, \"bbox\": [200, 200, 5, 5], \"segmentation\": [[200, 200, 205, 200, 205, 205]]},"
      " {\"id\": 601, \"image_id\": 2, \"bbox\": [1, 1, 5, 5], \"segmentation\": {\"size\": [72, 96], \"counts\": \"!!\"}},"
      " {\"id\": 701, \"image_id\": 3, \"bbox\": [1, 1, 5, 5]},"
      " {\"id\": 801, \"image_id\": 99, \"bbox\": [1, 1, 5, 5]},"
      " {\"id\": 901, \"image_id\": 5, \"bbox\": [1, 1, 5, 5], \"segmentation\": {\"size\": [70, 96], \"counts\": \"0\"}}"
      "]}";
  write_bytes(json, text, strlen(text));
  dataset_opts o = {.load_masks = 1, .image_root = folder};
  dataset *d = open_or_die(json, &o);
  check_true("5 images", dataset_size(d) == 5);
  raw_sample s;
  int ok = dataset_load(d, 0, &s) == MASA_OK;
  int good = ok && s.n_anns == 2 && s.n_dropped == 2 && s.anns[0].id == 501 && s.anns[0].has_mask &&
             s.anns[1].id == 502 && !s.anns[1].has_mask && s.anns[1].bbox[2] == 10 && s.anns[0].bbox[0] == 10.2;
  if (good) {  // mask of 501 = union of its two polygons rasterised like pycocotools
    double p1[] = {10.2, 5.5, 40.3, 5.5, 25.7, 25.5}, p2[] = {50, 50, 60, 50, 60, 60, 50, 60};
    rle parts[2], u;
    masa_assert(rle_from_polygon(p1, 3, 72, 96, &parts[0], "p1") == MASA_OK);
    masa_assert(rle_from_polygon(p2, 4, 72, 96, &parts[1], "p2") == MASA_OK);
    masa_assert(rle_union(parts, 2, 72, 96, &u) == MASA_OK);
    good = same_rle(&u, &s.anns[0].mask) && rle_area(&u) > 100;
    rle_free(&u);
    rle_free(&parts[0]);
    rle_free(&parts[1]);
  }
  check_true("polygons united, box-only kept, crowd skipped, degenerate and empty dropped (2)", good);
  if (ok) raw_sample_free(&s);
  expect_fail("bad RLE in COCO", dataset_load(d, 1, &s), "annotation 5 (id 601)", "invalid character");
  expect_fail("missing COCO image", dataset_load(d, 2, &s), "missing.jpg", "cannot open");
  expect_fail("COCO size mismatch", dataset_load(d, 3, &s), "sa_3.jpg", "annotations say");
  expect_fail("segmentation size differs from image", dataset_load(d, 4, &s), "id 901", "differs from the image size");
  dataset_close(d);
  write_bytes(json, "{\"images\": 3}", 13);
  d = dataset_open(json, &o);
  expect_fail("not a COCO file", d ? MASA_OK : MASA_ERR, "coco_cases.json", "not a COCO instance file");
  dataset_close(d);
}

static void test_open_errors(void) {
  printf("-- sources that cannot be opened\n");
  char p[600];
  snprintf(p, sizeof p, "%s/nothing_here", g_tmp);
  dataset *d = dataset_open(p, NULL);
  expect_fail("missing path", d ? MASA_OK : MASA_ERR, "nothing_here", "no such file");
  masa_assert(make_dirs(p) == MASA_OK);
  d = dataset_open(p, NULL);
  expect_fail("empty folder", d ? MASA_OK : MASA_ERR, "nothing_here", "no .tar shards and no .json");
  snprintf(p, sizeof p, "%s/shards/*.zip", g_tmp);
  d = dataset_open(p, NULL);
  expect_fail("glob without shards", d ? MASA_OK : MASA_ERR, "*.zip", "matches no .tar");
  snprintf(p, sizeof p, "%s/rt.png", g_tmp);
  d = dataset_open(p, NULL);
  expect_fail("unknown file type", d ? MASA_OK : MASA_ERR, "rt.png", "unknown source");
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("test_dataset", 3);
  if (argc < 2) {
    fprintf(stderr, "usage: test_dataset ORACLE.h5 (written by tests/oracle_dataset.py)\n");
    return 1;
  }
  log_set_level(LOG_ERROR);  // the corruption cases warn by design
  snprintf(g_tmp, sizeof g_tmp, "/tmp/masa_test_dataset_XXXXXX");
  masa_assert(mkdtemp(g_tmp));
  test_images(argv[1]);
  test_three_ways(seed);
  test_corrupt_folder(seed);
  test_corrupt_tar();
  test_coco_cases();
  test_open_errors();
  int rc = test_end();
  if (rc == 0) rm_rf(g_tmp);
  else printf("kept %s for inspection\n", g_tmp);
  return rc;
}
