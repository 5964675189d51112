// The MASA embedder: frame -> preprocessing (masa-spec 7.1) -> backbone -> adapter -> track head
// -> one raw 256-d (recipe-sized) embedding per box, as the official trackers consume them.
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/check.h"
#include "core/error.h"
#include "eval/embedder.h"
#include "model/masa_model.h"

typedef struct {
  masa_model m;
  model_runner run;  // weights and activations on the chosen device
} masa_embedder;

static int masa_embed(embedder *e, const image_u8 *frame, int n, const float *boxes, float *out) {
  masa_embedder *me = e->ctx;
  const masa_model *m = &me->m;
  if (n == 0) return MASA_OK;
  model_ctx ctx;
  model_runner_begin(&me->run, &me->m.params, &ctx);
  tensor x;
  preprocess_meta meta;
  preprocess_images(frame, 1, &m->cfg.pre, &x, &meta);
  tensor xd = x;
  xd.data = ctx_upload(&ctx, x.data, tensor_numel(&x));
  masa_feat_acts fa;
  masa_features_forward(m, &ctx, &xd, &fa);
  float *rois = mallocCheck((size_t)n * 5 * sizeof(float));
  for (int i = 0; i < n; i++) {
    rois[5 * i] = 0.0f;
    memcpy(rois + 5 * i + 1, boxes + 4 * i, 4 * sizeof(float));
  }
  // Boxes in original pixels -> network pixels (the official tracker multiplies by scale_factor).
  for (int i = 0; i < n; i++) {
    rois[5 * i + 1] *= (float)meta.scale_x;
    rois[5 * i + 3] *= (float)meta.scale_x;
    rois[5 * i + 2] *= (float)meta.scale_y;
    rois[5 * i + 4] *= (float)meta.scale_y;
  }
  masa_embed_rois(m, &ctx, fa.feats, n, rois, out);
  free(rois);
  tensor_free(&x);
  return MASA_OK;
}

static void masa_free(embedder *e) {
  masa_embedder *me = e->ctx;
  if (!me) return;
  masa_model_free(&me->m);
  model_runner_close(&me->run);
  free(me);
  e->ctx = NULL;
}

int embedder_masa_create(const config *cfg, const char *weights, const char *device_name,
                         embedder *out) {
  masa_embedder *me = callocCheck(1, sizeof *me);
  if (masa_model_load(cfg, weights, &me->m) != MASA_OK) {
    free(me);
    return MASA_ERR;
  }
  if (model_runner_open(&me->run, &me->m.params, device_name, cfg) != MASA_OK) {
    masa_model_free(&me->m);
    free(me);
    return MASA_ERR;
  }
  memset(out, 0, sizeof *out);
  out->dim = (int)me->m.cfg.track.embed_channels;
  out->embed = masa_embed;
  out->ctx = me;
  out->free = masa_free;
  return MASA_OK;
}
