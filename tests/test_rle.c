// COCO RLE against pycocotools (tests/oracle_rle.py): encode, decode, compressed strings both
// ways, uncompressed counts, polygons (frPoly) and their union, area and box. Everything is
// integer: comparisons are exact. Then malformed strings and counts (clear errors naming the
// annotation), seeded random round trips, and timings at SA-1B size.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/rle.h"
#include "harness.h"

static h5file *g_f;

typedef struct {
  const char *what;
  int failed, total;
} tally;

static void fail(tally *t, const char *fmt, const char *grp, const char *detail) {
  if (t->failed < 5) printf("    %s: %s: %s %s\n", t->what, grp, fmt, detail ? detail : "");
  t->failed++;
}

static void report(tally *t) {
  char line[128];
  snprintf(line, sizeof line, "%s (%d cases)", t->what, t->total);
  check_true(line, t->failed == 0);
}

static int64_t *read_i64(const char *grp, const char *name, int64_t *n) {
  char full[128];
  snprintf(full, sizeof full, "%s/%s", grp, name);
  int64_t *p, shape[TENSOR_MAX_DIMS];
  int nd;
  if (h5_read_i64(g_f, full, &p, &nd, shape) != MASA_OK) {
    fprintf(stderr, "test_rle: %s\n", masa_errmsg());
    exit(1);
  }
  *n = 1;
  for (int i = 0; i < nd; i++) *n *= shape[i];
  return p;
}

static float *read_f32(const char *grp, const char *name, int64_t *n) {
  char full[128];
  snprintf(full, sizeof full, "%s/%s", grp, name);
  return oracle_read_any(g_f, full, n, NULL, NULL);
}

// "str" holds [length, codes...].
static char *read_str(const char *grp) {
  int64_t n;
  int64_t *c = read_i64(grp, "str", &n);
  char *s = mallocCheck((size_t)c[0] + 1);
  for (int64_t i = 0; i < c[0]; i++) s[i] = (char)c[1 + i];
  s[c[0]] = 0;
  free(c);
  return s;
}

static int same_box(const double *a, const float *b) {
  for (int i = 0; i < 4; i++)
    if (a[i] != (double)b[i]) return 0;
  return 1;
}

static void test_masks(int n_cases) {
  tally enc = {"encode == pycocotools runs and string", 0, 0}, dec = {"string -> decode == mask", 0, 0},
        cnt = {"uncompressed counts -> string", 0, 0}, geo = {"area and toBbox exact", 0, 0};
  for (int k = 0; k < n_cases; k++) {
    char grp[32];
    snprintf(grp, sizeof grp, "mask%d", k);
    int64_t nm, nr, nmask;
    float *meta = read_f32(grp, "meta", &nm);
    int64_t h = (int64_t)meta[0], w = (int64_t)meta[1];
    float *mf = read_f32(grp, "mask", &nmask);
    int64_t *runs = read_i64(grp, "runs", &nr);
    char *ref = read_str(grp);
    uint8_t *mask = mallocCheck((size_t)(h * w + 1));
    for (int64_t i = 0; i < h * w; i++) mask[i] = mf[i] != 0;
    enc.total++;
    dec.total++;
    cnt.total++;
    geo.total++;
    rle r;
    rle_encode(mask, h, w, &r);
    int ok = r.m == nr;
    for (int64_t i = 0; ok && i < nr; i++) ok = r.cnts[i] == (uint32_t)runs[i];
    char *s = rle_to_string(&r);
    if (!ok || strcmp(s, ref)) fail(&enc, "encode differs; pycocotools string", grp, ref);
    double box[4];
    rle_bbox(&r, box);
    if (rle_area(&r) != (int64_t)meta[2] || !same_box(box, meta + 3)) fail(&geo, "area/box differ", grp, NULL);
    free(s);
    rle_free(&r);
    rle p;
    if (rle_from_string(ref, h, w, &p, grp) != MASA_OK) {
      fail(&dec, "parse failed:", grp, masa_errmsg());
    } else {
      uint8_t *back = mallocCheck((size_t)(h * w + 1));
      rle_decode(&p, back);
      if (memcmp(back, mask, (size_t)(h * w))) fail(&dec, "decoded mask differs", grp, NULL);
      free(back);
      rle_free(&p);
    }
    rle c;
    if (rle_from_counts(runs, nr, h, w, &c, grp) != MASA_OK) {
      fail(&cnt, "from_counts failed:", grp, masa_errmsg());
    } else {
      s = rle_to_string(&c);
      if (strcmp(s, ref)) fail(&cnt, "string differs", grp, NULL);
      free(s);
      rle_free(&c);
    }
    free(meta);
    free(mf);
    free(runs);
    free(ref);
    free(mask);
  }
  report(&enc);
  report(&dec);
  report(&cnt);
  report(&geo);
}

static void test_raw(void) {
  tally t = {"non-canonical counts kept verbatim", 0, 0};
  for (int k = 0; k < 4; k++) {
    char grp[32];
    snprintf(grp, sizeof grp, "raw%d", k);
    int64_t nm, nr;
    float *meta = read_f32(grp, "meta", &nm);
    int64_t *runs = read_i64(grp, "runs", &nr);
    char *ref = read_str(grp);
    rle c;
    t.total++;
    if (rle_from_counts(runs, nr, (int64_t)meta[0], (int64_t)meta[1], &c, grp) != MASA_OK) {
      fail(&t, "from_counts failed:", grp, masa_errmsg());
    } else {
      char *s = rle_to_string(&c);
      if (strcmp(s, ref) || rle_area(&c) != (int64_t)meta[2]) fail(&t, "string/area differ", grp, ref);
      free(s);
      rle_free(&c);
    }
    free(meta);
    free(runs);
    free(ref);
  }
  report(&t);
}

static void test_polygons(int n_cases) {
  tally t = {"polygons == pycocotools frPoly (+ merge)", 0, 0}, g = {"polygon area and box", 0, 0};
  for (int k = 0; k < n_cases; k++) {
    char grp[32], name[16];
    snprintf(grp, sizeof grp, "poly%d", k);
    int64_t nm;
    float *meta = read_f32(grp, "meta", &nm);
    int64_t h = (int64_t)meta[0], w = (int64_t)meta[1];
    int np = (int)meta[7];
    rle parts[8];
    masa_assert(np <= 8);
    int ok = 1;
    for (int j = 0; j < np; j++) {
      snprintf(name, sizeof name, "xy%d", j);
      int64_t n;
      int64_t *bits = read_i64(grp, name, &n);
      double *xy = mallocCheck((size_t)n * sizeof(double));
      memcpy(xy, bits, (size_t)n * sizeof(double));
      if (rle_from_polygon(xy, n / 2, h, w, &parts[j], grp) != MASA_OK) {
        fail(&t, "rasterisation failed:", grp, masa_errmsg());
        ok = 0;
      }
      free(bits);
      free(xy);
    }
    t.total++;
    g.total++;
    char *ref = read_str(grp);
    if (ok) {
      rle r;
      if (np == 1) rle_copy(&parts[0], &r);
      else masa_assert(rle_union(parts, np, h, w, &r) == MASA_OK);
      char *s = rle_to_string(&r);
      if (strcmp(s, ref)) {
        char detail[256];
        snprintf(detail, sizeof detail, "got %.60s want %.60s", s, ref);
        fail(&t, "string differs", grp, detail);
      }
      double box[4];
      rle_bbox(&r, box);
      if (rle_area(&r) != (int64_t)meta[2] || !same_box(box, meta + 3)) fail(&g, "area/box differ", grp, NULL);
      free(s);
      rle_free(&r);
      for (int j = 0; j < np; j++) rle_free(&parts[j]);
    }
    free(ref);
    free(meta);
  }
  report(&t);
  report(&g);
}

// Malformed input: MASA_ERR and a message naming `what` and the problem.
static void expect_error(const char *label, int rc, const char *needle) {
  const char *msg = masa_errmsg();
  int ok = rc == MASA_ERR && strstr(msg, "sa_1.json: annotation 17") && strstr(msg, needle);
  if (!ok) printf("    got rc %d, message: %s\n", rc, msg);
  check_true(label, ok);
}

static void test_malformed(void) {
  const char *what = "sa_1.json: annotation 17";
  rle r;
  expect_error("bad character", rle_from_string("52 0003", 4, 5, &r, what), "invalid character");
  expect_error("non-ASCII character", rle_from_string("52\xc3\xa9" "0003", 4, 5, &r, what), "invalid character");
  expect_error("string ends inside a run", rle_from_string("522000P", 4, 5, &r, what), "ends inside");
  expect_error("counts sum short of h*w", rle_from_string("522000", 4, 5, &r, what), "sum to 15");
  expect_error("counts past h*w", rle_from_string("5220004", 4, 5, &r, what), "past the end");
  expect_error("overflow (8-char run)", rle_from_string("oooooooo1", 4, 5, &r, what), "overflow");
  // '@' is the 5-bit group 0x10: delta -16, run 3 = counts[1] - 16 < 0
  expect_error("negative run", rle_from_string("522@", 4, 5, &r, what), "negative");
  expect_error("mask size overflow", rle_from_string("0", 1 << 20, 1 << 20, &r, what), "out of range");
  int64_t neg[] = {5, -2, 17};
  expect_error("negative uncompressed count", rle_from_counts(neg, 3, 4, 5, &r, what), "negative");
  int64_t shortc[] = {5, 2, 2};
  expect_error("uncompressed counts sum", rle_from_counts(shortc, 3, 4, 5, &r, what), "sum to 9");
  double two[] = {1, 1, 3, 3};
  expect_error("polygon with 2 points", rle_from_polygon(two, 2, 10, 10, &r, what), "at least 3");
  double nan_xy[] = {1, 1, NAN, 3, 4, 4};
  expect_error("polygon with NaN", rle_from_polygon(nan_xy, 3, 10, 10, &r, what), "not a finite");
  rle ok;
  check_true("empty mask of size 0 x 5 parses \"0\"", rle_from_string("0", 0, 5, &ok, what) == MASA_OK && ok.m == 1);
  uint8_t none[1];
  rle_decode(&ok, none);
  double box[4];
  rle_bbox(&ok, box);
  check_true("0 x 5 mask: decode, area 0, box 0", rle_area(&ok) == 0 && box[2] == 0);
  rle_free(&ok);
  uint8_t zero[1] = {0};
  rle_encode(zero, 0, 5, &ok);
  char *s0 = rle_to_string(&ok);
  check_true("0 x 5 mask encodes to \"0\" (pycocotools)", !strcmp(s0, "0"));
  free(s0);
  rle_free(&ok);
}

// Seeded random masks: encode -> string -> parse -> decode is the identity.
static void test_roundtrip(uint64_t seed) {
  int bad = 0;
  for (int k = 0; k < 200; k++) {
    int64_t h = 1 + rng_below(seed, 7, (uint64_t)k * 4, 40), w = 1 + rng_below(seed, 7, (uint64_t)k * 4 + 1, 40);
    float p = rng_uniform(seed, 7, (uint64_t)k * 4 + 2);
    uint8_t *m = mallocCheck((size_t)(h * w)), *back = mallocCheck((size_t)(h * w));
    for (int64_t i = 0; i < h * w; i++) m[i] = rng_uniform(seed, 8 + (uint64_t)k, (uint64_t)i) < p;
    rle r, q;
    rle_encode(m, h, w, &r);
    char *s = rle_to_string(&r);
    if (rle_from_string(s, h, w, &q, "roundtrip") != MASA_OK) {
      bad++;
    } else {
      rle_decode(&q, back);
      bad += memcmp(m, back, (size_t)(h * w)) != 0;
      rle_free(&q);
    }
    free(s);
    rle_free(&r);
    free(m);
    free(back);
  }
  check_true("200 random masks round-trip", bad == 0);
}

static void bench(void) {
  // The SA-1B-sized blob mask of the oracle (the last-but-one mask group).
  int64_t h = 1500, w = 2250, n;
  char grp[32];
  int k = 0;
  for (;; k++) {
    snprintf(grp, sizeof grp, "mask%d/meta", k);
    if (!h5_has(g_f, grp)) return;
    float *meta = oracle_read_any(g_f, grp, &n, NULL, NULL);
    int big = meta[0] == 1500 && meta[2] > 1000;
    free(meta);
    if (big) break;
  }
  snprintf(grp, sizeof grp, "mask%d", k);
  float *mf = read_f32(grp, "mask", &n);
  uint8_t *m = mallocCheck((size_t)(h * w)), *back = mallocCheck((size_t)(h * w));
  for (int64_t i = 0; i < h * w; i++) m[i] = mf[i] != 0;
  const int reps = 5;
  rle r;
  double t0 = time_now();
  for (int i = 0; i < reps; i++) {
    rle_encode(m, h, w, &r);
    if (i < reps - 1) rle_free(&r);
  }
  double t_enc = (time_now() - t0) / reps;
  char *s = NULL;
  t0 = time_now();
  for (int i = 0; i < reps; i++) {
    free(s);
    s = rle_to_string(&r);
  }
  double t_str = (time_now() - t0) / reps;
  rle q;
  t0 = time_now();
  for (int i = 0; i < reps; i++) {
    masa_assert(rle_from_string(s, h, w, &q, "bench") == MASA_OK);
    if (i < reps - 1) rle_free(&q);
  }
  double t_parse = (time_now() - t0) / reps;
  t0 = time_now();
  for (int i = 0; i < reps; i++) rle_decode(&q, back);
  double t_dec = (time_now() - t0) / reps;
  printf("  timing, 1500x2250 mask (%lld runs, %zu chars, area %lld): encode %.2f ms, to_string "
         "%.3f ms, from_string %.3f ms, decode %.2f ms\n", (long long)r.m, strlen(s),
         (long long)rle_area(&r), 1e3 * t_enc, 1e3 * t_str, 1e3 * t_parse, 1e3 * t_dec);
  check_true("SA-1B-size mask decodes back", memcmp(m, back, (size_t)(h * w)) == 0);
  free(s);
  rle_free(&r);
  rle_free(&q);
  free(mf);
  free(m);
  free(back);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("test_rle", 611);
  if (argc < 2) {
    fprintf(stderr, "usage: test_rle ORACLE.h5 (written by tests/oracle_rle.py)\n");
    return 1;
  }
  g_f = oracle_open(argv[1]);
  int64_t n;
  float *counts = oracle_read_any(g_f, "counts", &n, NULL, NULL);
  test_masks((int)counts[0]);
  test_raw();
  test_polygons((int)counts[2]);
  free(counts);
  test_malformed();
  test_roundtrip(seed);
  bench();
  h5_close(g_f);
  return test_end();
}
