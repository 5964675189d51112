// MaxIoUAssigner (see assign.h). The (G, N) IoU matrix is never stored: with ~65k anchors and a
// few hundred GTs it would be tens of MB. IoUs are computed in one pass over boxes; the rare
// rescan (a GT whose maximum is attained by several boxes) recomputes them with the same
// float32 expression, so the equality test sees bitwise the values the maximum came from.
#include "train/assign.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/check.h"

static inline float box_area(const float *b) { return (b[2] - b[0]) * (b[3] - b[1]); }

// torch.max / torch.min elementwise on finite floats.
static inline float max2(float a, float b) { return a > b ? a : b; }
static inline float min2(float a, float b) { return a < b ? a : b; }

// mmdet bbox_overlaps for one pair; a is the first operand (the GT in the assigner).
static inline float iou_pair(const float *a, float area_a, const float *b, float area_b) {
  float w = min2(a[2], b[2]) - max2(a[0], b[0]);
  float h = min2(a[3], b[3]) - max2(a[1], b[1]);
  // clamp(min=0): no overlap gives inter 0 and IoU +0 exactly as 0 / union would.
  if (!(w > 0.0f) || !(h > 0.0f)) return 0.0f;
  float inter = w * h;
  float uni = area_a + area_b - inter;
  if (uni < 1e-6f) uni = 1e-6f;
  return inter / uni;
}

void bbox_overlaps(int64_t m, const float *a, int64_t n, const float *b, float *out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < m; i++) {
    float aa = box_area(a + 4 * i);
    for (int64_t j = 0; j < n; j++) out[i * n + j] = iou_pair(a + 4 * i, aa, b + 4 * j, box_area(b + 4 * j));
  }
}

max_iou_assigner_cfg max_iou_assigner_rpn(void) {
  return (max_iou_assigner_cfg){0.7f, 0.3f, 0.3f, 1, 1};
}
max_iou_assigner_cfg max_iou_assigner_rcnn(void) {
  return (max_iou_assigner_cfg){0.5f, 0.5f, 0.5f, 0, 1};
}
max_iou_assigner_cfg max_iou_assigner_track(void) {
  return (max_iou_assigner_cfg){0.7f, 0.3f, 0.5f, 0, 1};
}

void max_iou_assign(const max_iou_assigner_cfg *cfg, int64_t n, const float *boxes, int64_t g,
                    const float *gts, assign_result *out) {
  masa_assert(n >= 0 && g >= 0);
  out->num_gts = g;
  out->num_boxes = n;
  out->num_gt_prepended = 0;
  out->gt_inds = mallocCheck((size_t)(n + 1) * sizeof(int64_t));
  out->max_overlaps = callocCheck((size_t)(n + 1), sizeof(float));
  if (g == 0 || n == 0) {
    for (int64_t j = 0; j < n; j++) out->gt_inds[j] = g == 0 ? 0 : -1;
    return;
  }
  float *area_g = mallocCheck((size_t)g * sizeof(float));
  float *area_b = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < g; i++) area_g[i] = box_area(gts + 4 * i);
  for (int64_t j = 0; j < n; j++) area_b[j] = box_area(boxes + 4 * j);

  // One pass over boxes. Low-quality matching also needs, per GT, its maximum over boxes, the
  // first box attaining it and how many do: each thread keeps its own for its (ascending)
  // chunk of boxes; combining them with max / min index / sum is exact, so the result does
  // not depend on the thread count.
  const int lq = cfg->match_low_quality;
  const int nt = lq ? omp_get_max_threads() : 1;
  float *t_max = NULL;
  int64_t *t_arg = NULL, *t_cnt = NULL;
  if (lq) {
    t_max = mallocCheck((size_t)nt * (size_t)g * sizeof(float));
    t_arg = mallocCheck((size_t)nt * (size_t)g * sizeof(int64_t));
    t_cnt = callocCheck((size_t)nt * (size_t)g, sizeof(int64_t));
    for (int64_t k = 0; k < (int64_t)nt * g; k++) t_max[k] = -INFINITY, t_arg[k] = -1;
  }
#pragma omp parallel if (n * g > 4096)
  {
    const int tid = lq ? omp_get_thread_num() : 0;
    float *my_max = lq ? t_max + (int64_t)tid * g : NULL;
    int64_t *my_arg = lq ? t_arg + (int64_t)tid * g : NULL, *my_cnt = lq ? t_cnt + (int64_t)tid * g : NULL;
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n; j++) {
      const float *b = boxes + 4 * j;
      float best = -INFINITY;
      int64_t arg = 0;
      for (int64_t i = 0; i < g; i++) {
        float v = iou_pair(gts + 4 * i, area_g[i], b, area_b[j]);
        if (i == 0 || v > best) best = v, arg = i;  // first maximum, as torch.max
        if (lq) {
          if (v > my_max[i]) my_max[i] = v, my_arg[i] = j, my_cnt[i] = 1;
          else if (v == my_max[i]) my_cnt[i]++;
        }
      }
      int64_t gi = -1;
      if (best >= 0.0f && best < cfg->neg_iou_thr) gi = 0;
      if (best >= cfg->pos_iou_thr) gi = arg + 1;
      out->gt_inds[j] = gi;
      out->max_overlaps[j] = best;
    }
  }
  if (lq) {
    for (int64_t i = 0; i < g; i++) {
      float best = -INFINITY;
      int64_t arg = -1, cnt = 0;
      for (int t = 0; t < nt; t++) {
        float v = t_max[(int64_t)t * g + i];
        int64_t a = t_arg[(int64_t)t * g + i], c = t_cnt[(int64_t)t * g + i];
        if (a < 0) continue;
        if (v > best) best = v, arg = a, cnt = c;
        else if (v == best) arg = a < arg ? a : arg, cnt += c;
      }
      // GTs in ascending order, so a later GT overwrites an earlier one on shared boxes.
      if (!(best >= cfg->min_pos_iou)) continue;
      if (cnt == 1 || !cfg->gt_max_assign_all) {
        out->gt_inds[arg] = i + 1;
      } else {
        for (int64_t j = 0; j < n; j++)
          if (iou_pair(gts + 4 * i, area_g[i], boxes + 4 * j, area_b[j]) == best) out->gt_inds[j] = i + 1;
      }
    }
  }
  free(t_max);
  free(t_arg);
  free(t_cnt);
  free(area_g);
  free(area_b);
}

void assign_result_add_gt(assign_result *r) {
  int64_t g = r->num_gts;
  if (g == 0 || r->num_gt_prepended) return;
  int64_t n = r->num_boxes;
  int64_t *inds = mallocCheck((size_t)(n + g) * sizeof(int64_t));
  float *ov = mallocCheck((size_t)(n + g) * sizeof(float));
  for (int64_t i = 0; i < g; i++) inds[i] = i + 1, ov[i] = 1.0f;
  if (n > 0) {
    memcpy(inds + g, r->gt_inds, (size_t)n * sizeof(int64_t));
    memcpy(ov + g, r->max_overlaps, (size_t)n * sizeof(float));
  }
  free(r->gt_inds);
  free(r->max_overlaps);
  r->gt_inds = inds;
  r->max_overlaps = ov;
  r->num_boxes = n + g;
  r->num_gt_prepended = g;
}

void assign_result_free(assign_result *r) {
  free(r->gt_inds);
  free(r->max_overlaps);
  memset(r, 0, sizeof *r);
}
