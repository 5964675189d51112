#include "model/nms.h"

#include <math.h>
#include <stdlib.h>

#include "core/check.h"

typedef struct {
  float s;
  int64_t i;
} scored;

static int cmp_desc(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  int an = isnan(a->s), bn = isnan(b->s);
  if (an != bn) return an ? -1 : 1;  // NaN sorts first in a descending torch sort
  if (!an && a->s != b->s) return a->s > b->s ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

void argsort_desc_stable(int64_t n, const float *scores, int64_t *order) {
  if (n <= 0) return;
  scored *v = mallocCheck((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = (scored){scores[i], i};
  qsort(v, (size_t)n, sizeof *v, cmp_desc);
  for (int64_t i = 0; i < n; i++) order[i] = v[i].i;
  free(v);
}

float box_iou(const float *a, const float *b) {
  float area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
  float w = fmaxf(0.0f, fminf(a[2], b[2]) - fmaxf(a[0], b[0]));
  float h = fmaxf(0.0f, fminf(a[3], b[3]) - fmaxf(a[1], b[1]));
  float inter = w * h;
  return inter / (area_a + area_b - inter);
}

// std::max / std::min as mmcv writes them (first argument kept on ties and NaN second).
static float maxf_(float a, float b) { return a < b ? b : a; }
static float minf_(float a, float b) { return b < a ? b : a; }

int64_t nms_cpu(int64_t n, const float *boxes, const float *scores, float iou_thr, int64_t *keep) {
  if (n <= 0) return 0;
  int64_t *order = mallocCheck((size_t)n * sizeof *order);
  float *areas = mallocCheck((size_t)n * sizeof *areas);
  unsigned char *alive = mallocCheck((size_t)n);
  argsort_desc_stable(n, scores, order);
  for (int64_t i = 0; i < n; i++) {
    const float *b = boxes + 4 * i;
    areas[i] = (b[2] - b[0]) * (b[3] - b[1]);
    alive[i] = 1;
  }
  int64_t nk = 0;
  for (int64_t oi = 0; oi < n; oi++) {
    if (!alive[oi]) continue;
    int64_t i = order[oi];
    keep[nk++] = i;
    const float *bi = boxes + 4 * i;
    for (int64_t oj = oi + 1; oj < n; oj++) {
      if (!alive[oj]) continue;
      int64_t j = order[oj];
      const float *bj = boxes + 4 * j;
      float xx1 = maxf_(bi[0], bj[0]), yy1 = maxf_(bi[1], bj[1]);
      float xx2 = minf_(bi[2], bj[2]), yy2 = minf_(bi[3], bj[3]);
      float w = maxf_(0.0f, xx2 - xx1), h = maxf_(0.0f, yy2 - yy1);
      float inter = w * h;
      float ovr = inter / (areas[i] + areas[j] - inter);
      if (ovr > iou_thr) alive[oj] = 0;
    }
  }
  free(order);
  free(areas);
  free(alive);
  return nk;
}

static int cmp_i64(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  return (a > b) - (a < b);
}

int64_t batched_nms_cpu(int64_t n, const float *boxes, const float *scores, const int64_t *idxs,
                        float iou_thr, int class_agnostic, int64_t split_thr, int64_t *keep) {
  if (n <= 0) return 0;
  const float *bx = boxes;
  float *shifted = NULL;
  if (!class_agnostic) {
    float maxc = boxes[0];
    for (int64_t i = 1; i < 4 * n; i++)
      if (boxes[i] > maxc) maxc = boxes[i];
    shifted = mallocCheck((size_t)n * 4 * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
      float off = (float)idxs[i] * (maxc + 1.0f);
      for (int j = 0; j < 4; j++) shifted[4 * i + j] = boxes[4 * i + j] + off;
    }
    bx = shifted;
  }
  int64_t nk;
  if (n < split_thr) {
    nk = nms_cpu(n, bx, scores, iou_thr, keep);
  } else {
    // Per group (ascending id, torch.unique order), then all survivors by descending score.
    int64_t *ids = mallocCheck((size_t)n * sizeof *ids);
    int64_t *members = mallocCheck((size_t)n * sizeof *members);
    int64_t *gkeep = mallocCheck((size_t)n * sizeof *gkeep);
    float *gb = mallocCheck((size_t)n * 4 * sizeof(float));
    float *gs = mallocCheck((size_t)n * sizeof(float));
    unsigned char *kept = callocCheck((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) ids[i] = idxs[i];
    qsort(ids, (size_t)n, sizeof *ids, cmp_i64);
    for (int64_t u = 0; u < n; u++) {
      if (u > 0 && ids[u] == ids[u - 1]) continue;
      int64_t m = 0;
      for (int64_t i = 0; i < n; i++) {
        if (idxs[i] != ids[u]) continue;
        members[m] = i;
        for (int j = 0; j < 4; j++) gb[4 * m + j] = bx[4 * i + j];
        gs[m] = scores[i];
        m++;
      }
      int64_t gk = nms_cpu(m, gb, gs, iou_thr, gkeep);
      for (int64_t q = 0; q < gk; q++) kept[members[gkeep[q]]] = 1;
    }
    // Survivors in index order, then a stable descending sort by score.
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
      if (kept[i]) {
        members[m] = i;
        gs[m] = scores[i];
        m++;
      }
    argsort_desc_stable(m, gs, gkeep);
    for (int64_t q = 0; q < m; q++) keep[q] = members[gkeep[q]];
    nk = m;
    free(ids);
    free(members);
    free(gkeep);
    free(gb);
    free(gs);
    free(kept);
  }
  free(shifted);
  return nk;
}
