// Test-time preprocessing against the official pipeline's libraries (tests/oracle_preprocess.py):
// mmcv keep-ratio sizes, cv2.resize(INTER_LINEAR) on uint8 (random images: upscale, downscale,
// the exact-2x case cv2 routes to INTER_AREA, 1-pixel rows, same size, odd ratios; and 640x480 /
// 1280x720 frames at the real scales through checksums and samples), the float32 normalise +
// pad batch, the recorded scale factors and box scaling.
// Tolerance: 0 everywhere. The resize reproduces OpenCV's fixed-point arithmetic and rounding
// (bit-exact on the cv2 4.11 x86 build checked; the brief allows +-1 level, not needed), and
// normalisation is the same float32 subtraction and division mmdet performs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "harness.h"
#include "model/preprocess.h"

static uint8_t *read_u8_image(h5file *f, const char *name, int *h, int *w) {
  int64_t n, shape[TENSOR_MAX_DIMS];
  int nd;
  float *v = oracle_read_any(f, name, &n, &nd, shape);
  masa_assert(nd == 3 && shape[2] == 3);
  uint8_t *px = mallocCheck((size_t)n);
  for (int64_t i = 0; i < n; i++) px[i] = (uint8_t)v[i];
  *h = (int)shape[0], *w = (int)shape[1];
  free(v);
  return px;
}

static int64_t *read_i64(h5file *f, const char *name, int64_t *n) {
  int64_t *p, shape[TENSOR_MAX_DIMS];
  int nd;
  if (h5_read_i64(f, name, &p, &nd, shape) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    exit(1);
  }
  *n = shape[0];
  return p;
}

static void test_sizes(h5file *f) {
  int64_t n, shape[TENSOR_MAX_DIMS];
  int nd;
  float *rows = oracle_read_any(f, "sizes", &n, &nd, shape);
  int bad = 0;
  for (int64_t r = 0; r < shape[0]; r++) {
    const float *q = rows + r * 6;
    int nh, nw;
    rescale_keep_ratio((int)q[0], (int)q[1], (int)q[2], (int)q[3], &nh, &nw);
    if (nh != (int)q[4] || nw != (int)q[5]) {
      if (bad++ < 5)
        printf("    %dx%d @ (%d, %d): got %dx%d, want %dx%d\n", (int)q[0], (int)q[1], (int)q[2],
               (int)q[3], nh, nw, (int)q[4], (int)q[5]);
    }
  }
  char what[96];
  snprintf(what, sizeof what, "keep-ratio sizes (%lld cases) = mmcv", (long long)shape[0]);
  check_true(what, bad == 0);
  free(rows);
}

static void test_resize_case(h5file *f, const char *cs) {
  char name[96], what[96];
  int h, w, nh, nw;
  snprintf(name, sizeof name, "img/%s", cs);
  uint8_t *img = read_u8_image(f, name, &h, &w);
  snprintf(name, sizeof name, "out/%s", cs);
  uint8_t *want = read_u8_image(f, name, &nh, &nw);
  int64_t two = 2;
  snprintf(name, sizeof name, "cfg/%s", cs);
  float *cfg = oracle_read(f, name, 1, &two);
  int gh, gw;
  rescale_keep_ratio(h, w, (int)cfg[0], (int)cfg[1], &gh, &gw);
  snprintf(what, sizeof what, "%s: %dx%d -> %dx%d size", cs, h, w, nh, nw);
  check_true(what, gh == nh && gw == nw);
  uint8_t *got = mallocCheck((size_t)nh * nw * 3);
  resize_linear_u8(img, h, w, 3, got, nh, nw);
  int64_t n = (int64_t)nh * nw * 3, diff = 0;
  int maxd = 0;
  for (int64_t i = 0; i < n; i++) {
    int d = abs((int)got[i] - (int)want[i]);
    diff += d != 0;
    maxd = d > maxd ? d : maxd;
  }
  snprintf(what, sizeof what, "%s: resize = cv2 (%lld differ, max %d)", cs, (long long)diff, maxd);
  check_true(what, diff == 0);
  // Scale factors as mmdet records them (float32 when multiplied with boxes).
  image_u8 im = {.h = h, .w = w, .px = img};
  preprocess_cfg pc;
  preprocess_cfg_init(&pc, (int)cfg[0], (int)cfg[1], 1);
  preprocess_meta meta;
  tensor out;
  preprocess_images(&im, 1, &pc, &out, &meta);
  snprintf(name, sizeof name, "scale/%s", cs);
  float *sc = oracle_read(f, name, 1, &two);
  snprintf(what, sizeof what, "%s: scale factor (%.6g, %.6g)", cs, meta.scale_x, meta.scale_y);
  check_true(what, (float)meta.scale_x == sc[0] && (float)meta.scale_y == sc[1] && meta.h == nh &&
                       meta.w == nw);
  tensor_free(&out);
  free(sc);
  free(cfg);
  free(got);
  free(want);
  free(img);
}

static void test_pattern_case(h5file *f, const char *cs) {
  char name[96], what[128];
  int64_t six = 6, n;
  snprintf(name, sizeof name, "pattern/%s", cs);
  float *q = oracle_read(f, name, 1, &six);
  int h = (int)q[0], w = (int)q[1], nh, nw;
  rescale_keep_ratio(h, w, (int)q[2], (int)q[3], &nh, &nw);
  snprintf(what, sizeof what, "%s: %dx%d @ (%d, %d) -> %dx%d", cs, h, w, (int)q[2], (int)q[3],
           (int)q[4], (int)q[5]);
  check_true(what, nh == (int)q[4] && nw == (int)q[5]);
  uint8_t *img = mallocCheck((size_t)h * w * 3), *got = mallocCheck((size_t)nh * nw * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img[((int64_t)y * w + x) * 3 + c] = (uint8_t)((7 * x + 13 * y + 101 * c + (x * y) % 31) % 256);
  resize_linear_u8(img, h, w, 3, got, nh, nw);
  int64_t total = (int64_t)nh * nw * 3, s0 = 0, s1 = 0;
  for (int64_t i = 0; i < total; i++) s0 += got[i], s1 += (int64_t)got[i] * (i % 251 + 1);
  snprintf(name, sizeof name, "psum/%s", cs);
  int64_t *ps = read_i64(f, name, &n);
  snprintf(name, sizeof name, "pidx/%s", cs);
  int64_t *pi = read_i64(f, name, &n);
  snprintf(name, sizeof name, "pval/%s", cs);
  float *pv = oracle_read(f, name, 1, &n);
  int bad = 0;
  for (int64_t k = 0; k < n; k++) bad += got[pi[k]] != (uint8_t)pv[k];
  snprintf(what, sizeof what, "%s: resize = cv2 (checksums, %lld samples: %d differ)", cs,
           (long long)n, bad);
  check_true(what, s0 == ps[0] && s1 == ps[1] && bad == 0);
  free(pv);
  free(pi);
  free(ps);
  free(got);
  free(img);
  free(q);
}

static void test_batch(h5file *f) {
  image_u8 ims[2];
  ims[0].px = read_u8_image(f, "img/up", &ims[0].h, &ims[0].w);
  ims[1].px = read_u8_image(f, "img/down", &ims[1].h, &ims[1].w);
  preprocess_cfg cfg;
  preprocess_cfg_init(&cfg, 128, 128, 32);
  tensor out;
  preprocess_meta meta[2];
  preprocess_images(ims, 2, &cfg, &out, meta);
  int64_t n, shape[TENSOR_MAX_DIMS];
  int nd;
  float *ref = oracle_read_any(f, "batch", &n, &nd, shape);
  char what[128];
  snprintf(what, sizeof what, "batch shape (2, 3, %lld, %lld)", (long long)shape[2],
           (long long)shape[3]);
  check_true(what, nd == 4 && tensor_same_shape(&out, &(tensor){.ndim = 4, .shape = {shape[0],
                                                                 shape[1], shape[2], shape[3]}}));
  check_close("batch: normalised + zero-padded", out.data, ref, n, 0, 0,
              "same float32 (x - mean) / std as mmdet; padding exact zeros");
  int64_t bshape[2] = {2, 4};
  float *bm = oracle_read(f, "batch_meta", 2, bshape);
  int ok = 1;
  for (int i = 0; i < 2; i++)
    ok &= meta[i].orig_h == (int)bm[4 * i] && meta[i].orig_w == (int)bm[4 * i + 1] &&
          meta[i].h == (int)bm[4 * i + 2] && meta[i].w == (int)bm[4 * i + 3];
  check_true("batch meta (sizes before / after resize)", ok);

  // boxes of image 1 ("down")
  int64_t bs[TENSOR_MAX_DIMS];
  float *boxes = oracle_read_any(f, "boxes", &n, &nd, bs);
  float *want = oracle_read_any(f, "boxes_scaled", &n, &nd, bs);
  preprocess_scale_boxes(boxes, bs[0], bs[1], &meta[1]);
  check_close("boxes scaled into network pixels", boxes, want, n, 0, 0,
              "float32 multiply by the float32 scale factor, as mmdet");
  free(boxes);
  free(want);
  free(bm);
  free(ref);
  tensor_free(&out);
  free(ims[0].px);
  free(ims[1].px);
}

int main(int argc, char **argv) {
  test_begin("preprocess", 0);
  if (argc < 2) {
    fprintf(stderr, "usage: %s oracle.h5\n", argv[0]);
    return 1;
  }
  h5file *f = oracle_open(argv[1]);
  test_sizes(f);
  const char *cases[] = {"up", "down", "half", "detic", "tiny", "same", "thin", "odd", "wide"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_resize_case(f, cases[i]);
  test_pattern_case(f, "vga");
  test_pattern_case(f, "hd");
  test_batch(f);
  h5_close(f);
  return test_end();
}
