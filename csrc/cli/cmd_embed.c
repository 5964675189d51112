// `masa embed`: instance embeddings of given boxes in one image, the way a user embeds their own
// detections and the way anyone can compare us against another implementation.
//   masa embed --config CFG --weights W.h5 --image IMG --boxes BOXES.txt --out OUT.h5
//              [--dump-features] [--device cpu|cuda|cuda:N] [--set key=value]... [--threads N]
// BOXES.txt: one box per line, "x1 y1 x2 y2" in original image pixels (blank lines and '#'
// comments ignored). OUT.h5: `embeddings` (N, E) float32 in box order; with --dump-features also
// `features/0` .. `features/L-1`, the adapter outputs (1, C, H_l, W_l).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"
#include "data/image.h"
#include "model/masa_model.h"

// Reads "x1 y1 x2 y2" lines; MASA_ERR naming path:line on a malformed or degenerate box.
static int read_boxes(const char *path, float **out, int64_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) return masa_error("%s: cannot open boxes file", path);
  int64_t cap = 64, k = 0;
  float *b = mallocCheck((size_t)cap * 4 * sizeof(float));
  char line[512];
  int lineno = 0, rc = MASA_OK;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (!*s) continue;
    float v[4];
    char extra;
    if (sscanf(s, "%f %f %f %f %c", &v[0], &v[1], &v[2], &v[3], &extra) != 4) {
      rc = masa_error("%s:%d: expected 'x1 y1 x2 y2', got '%s'", path, lineno, s);
      break;
    }
    if (!(v[2] >= v[0] && v[3] >= v[1])) {
      rc = masa_error("%s:%d: box has x2 < x1 or y2 < y1", path, lineno);
      break;
    }
    if (k == cap) {
      cap *= 2;
      float *nb = realloc(b, (size_t)cap * 4 * sizeof(float));
      if (!nb) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
      b = nb;
    }
    memcpy(b + 4 * k, v, sizeof v);
    k++;
  }
  fclose(f);
  if (rc != MASA_OK) {
    free(b);
    return rc;
  }
  *out = b;
  *n = k;
  return MASA_OK;
}

int cmd_embed(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[64];
  int nrest = 0, rc = 1, dump = 0;
  const char *weights = NULL, *image = NULL, *boxes = NULL, *out = NULL, *device_name = NULL;
  if (argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 64 ? "too many arguments" : masa_errmsg());
    config_free(&cfg);
    return 1;
  }
  for (int i = 0; i < nrest; i++) {
    const char *a = rest[i];
    const char **dst = !strcmp(a, "--weights") ? &weights
                       : !strcmp(a, "--image") ? &image
                       : !strcmp(a, "--boxes") ? &boxes
                       : !strcmp(a, "--out")   ? &out
                       : !strcmp(a, "--device") ? &device_name
                                               : NULL;
    if (dst && i + 1 < nrest) {
      *dst = rest[++i];
    } else if (!strcmp(a, "--dump-features")) {
      dump = 1;
    } else {
      log_error("embed: unexpected argument '%s'\nusage: masa embed --config CFG --weights W.h5 "
                "--image IMG --boxes BOXES.txt --out OUT.h5 [--dump-features] [--device D]", a);
      config_free(&cfg);
      return 1;
    }
  }
  if (!weights || !image || !boxes || !out) {
    log_error("embed: --weights, --image, --boxes and --out are required");
    config_free(&cfg);
    return 1;
  }
  masa_model m;
  float *bx = NULL;
  int64_t nb = 0;
  uint8_t *buf = NULL;
  size_t nbuf = 0;
  image_u8 im = {0};
  if (masa_model_load(&cfg, weights, &m) != MASA_OK) {
    log_error("%s", masa_errmsg());
    config_free(&cfg);
    return 1;
  }
  if (read_boxes(boxes, &bx, &nb) != MASA_OK || file_read_all(image, &buf, &nbuf) != MASA_OK ||
      image_decode(buf, nbuf, 1, &im, image) != MASA_OK) {
    log_error("%s", masa_errmsg());
    goto done;
  }
  model_runner run;
  if (model_runner_open(&run, &m.params, device_name, &cfg) != MASA_OK) {
    log_error("%s", masa_errmsg());
    goto done;
  }
  model_ctx ctx;
  model_runner_begin(&run, &m.params, &ctx);
  tensor x;
  preprocess_meta meta;
  preprocess_images(&im, 1, &m.cfg.pre, &x, &meta);
  double t0 = time_now();
  tensor xd = x;
  xd.data = ctx_upload(&ctx, x.data, tensor_numel(&x));
  masa_feat_acts fa;
  masa_features_forward(&m, &ctx, &xd, &fa);
  preprocess_scale_boxes(bx, nb, 4, &meta);
  float *rois = mallocCheck((size_t)(nb > 0 ? nb : 1) * 5 * sizeof(float));
  for (int64_t i = 0; i < nb; i++) {
    rois[5 * i] = 0.0f;
    memcpy(rois + 5 * i + 1, bx + 4 * i, 4 * sizeof(float));
  }
  int64_t E = m.cfg.track.embed_channels;
  float *emb = mallocCheck((size_t)(nb > 0 ? nb : 1) * (size_t)E * sizeof(float));
  masa_embed_rois(&m, &ctx, fa.feats, nb, rois, emb);
  log_info("embedded %lld boxes in %.2f s (input %dx%d -> %lldx%lld, peak activations %.1f MB)",
           (long long)nb, time_now() - t0, meta.orig_w, meta.orig_h, (long long)x.shape[3],
           (long long)x.shape[2], (double)run.ar.peak / 1e6);
  h5file *f = h5_create(out);
  if (!f || h5_write(f, "embeddings", emb, 2, (int64_t[]){nb, E}) != MASA_OK) {
    log_error("%s", masa_errmsg());
  } else {
    rc = 0;
    for (int l = 0; dump && l < m.cfg.num_outs; l++) {
      char name[32];
      snprintf(name, sizeof name, "features/%d", l);
      tensor hf = ctx_host_view(&ctx, &fa.feats[l]);
      if (h5_write(f, name, hf.data, 4, hf.shape) != MASA_OK) {
        log_error("%s", masa_errmsg());
        rc = 1;
      }
    }
  }
  if (f) h5_close(f);
  free(rois);
  free(emb);
  tensor_free(&x);
  model_runner_close(&run);
done:
  free(bx);
  free(buf);
  image_free(&im);
  masa_model_free(&m);
  config_free(&cfg);
  return rc;
}
