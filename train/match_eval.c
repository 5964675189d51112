#include "train/match_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/check.h"
#include "core/error.h"

static double cosine(const float *a, const float *b, int64_t d) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t k = 0; k < d; k++) {
    ab += (double)a[k] * b[k];
    aa += (double)a[k] * a[k];
    bb += (double)b[k] * b[k];
  }
  return ab / (sqrt(aa) * sqrt(bb) + 1e-12);
}

int match_eval(const masa_model *m, loader *ld, int64_t batches, match_result *out) {
  memset(out, 0, sizeof *out);
  arena ar;
  arena_init(&ar, 0);
  model_ctx ctx = {(param_table *)&m->params, &ar, 0, NULL, NULL, NULL};
  int64_t E = m->cfg.track.embed_channels;
  double chance = 0;
  int rc = MASA_OK;
  for (int64_t bi = 0; bi < batches; bi++) {
    const loader_batch *b = loader_next(ld);
    if (!b) {
      rc = MASA_ERR;
      break;
    }
    arena_reset(&ar);
    int n = b->n, S = b->size;
    float *emb[2];
    int64_t *start[2];
    for (int k = 0; k < 2; k++) {
      int64_t shape[4] = {n, 3, S, S};
      tensor img = tensor_view(b->img[k], 4, shape);
      masa_feat_acts fa;
      masa_features_forward(m, &ctx, &img, &fa);
      int64_t total = 0;
      start[k] = mallocCheck((size_t)(n + 1) * sizeof(int64_t));
      for (int i = 0; i < n; i++) start[k][i] = total, total += b->pairs[i].v[k].n;
      start[k][n] = total;
      float *rois = mallocCheck((size_t)(total + 1) * 5 * sizeof(float));
      for (int i = 0; i < n; i++)
        for (int j = 0; j < b->pairs[i].v[k].n; j++) {
          float *r = rois + 5 * (start[k][i] + j);
          r[0] = (float)i;
          memcpy(r + 1, b->pairs[i].v[k].boxes + 4 * j, 4 * sizeof(float));
        }
      emb[k] = mallocCheck((size_t)(total + 1) * (size_t)E * sizeof(float));
      masa_embed_rois(m, &ctx, fa.feats, total, rois, emb[k]);
      free(rois);
    }
    for (int i = 0; i < n; i++) {
      const view *kv = &b->pairs[i].v[0], *rv = &b->pairs[i].v[1];
      out->pairs++;
      for (int a = 0; a < kv->n; a++) {
        int present = 0;
        for (int c = 0; c < rv->n; c++) present |= rv->ids[c] == kv->ids[a];
        if (!present) continue;
        const float *ka = emb[0] + (start[0][i] + a) * E;
        int best = -1;
        double best_s = -INFINITY;
        for (int c = 0; c < rv->n; c++) {
          double sc = cosine(ka, emb[1] + (start[1][i] + c) * E, E);
          if (sc > best_s) best_s = sc, best = c;
        }
        out->instances++;
        out->correct += best >= 0 && rv->ids[best] == kv->ids[a];
        chance += 1.0 / rv->n;
      }
    }
    for (int k = 0; k < 2; k++) free(emb[k]), free(start[k]);
  }
  out->accuracy = out->instances ? (double)out->correct / (double)out->instances : 0.0;
  out->chance = out->instances ? chance / (double)out->instances : 0.0;
  arena_free(&ar);
  return rc;
}
