// RoIAlign, average mode, mirroring torchvision.ops.roi_align / mmcv RoIAlign (pool_mode avg).
// - Layout: x (n, c, h, w) NCHW; rois (k, 5) = [batch, x1, y1, x2, y2] in input-image pixels;
//   y (k, c, out_h, out_w). Pixel centres sit at integer feature coordinates.
// - aligned: start = x1 * scale - 0.5 (half-pixel shift), size not clamped; not aligned: no shift,
//   size clamped to >= 1. Sample (iy, ix) of bin (ph, pw) sits at
//   start + ph * bin + (iy + 0.5) * bin / grid; grid = sampling_ratio, or ceil(size / out) if 0.
// - Out of bounds: a sample contributes 0 unless -1 <= y <= h and -1 <= x <= w (written as the
//   negation of "in range" so NaN coordinates also give 0); inside, coordinates are clamped to
//   >= 0 and a lower index >= h - 1 snaps to the last row (clamp to edge). Each bin is the sum of
//   its samples divided by max(grid_h * grid_w, 1).
// - Arithmetic is float32 in torchvision's operation order, so results match its float path.
// - Sample positions are separable (y depends on (ph, iy), x on (pw, ix)): one small table per
//   RoI and axis is built once and reused for every channel.
// - Backward scatters into dx planes; each thread owns whole (batch, channel) planes and visits
//   RoIs in index order, so dx is race-free and bit-identical for any thread count.
// - Multi-level (mmdet SingleRoIExtractor): level from roi_align_map_level; NaN sizes go to 0.
#include "ops/roi_align.h"

#include <math.h>
#include <stdio.h>

#include "core/check.h"

// Adaptive grids beyond this many samples per bin side mean a corrupt RoI (a 1024-pixel image
// at stride 4 with a 7x7 output needs 37).
#define ROI_MAX_GRID 4096

typedef struct {
  int64_t lo, hi;  // low/high index along the axis (rows are pre-multiplied by the row stride)
  float wlo, whi;  // 1 - l and l
  int valid;       // 0: the sample lies outside [-1, size] (or is NaN) and contributes nothing
} roi_axis_sample;

typedef struct {
  int64_t batch;
  int level;
  int64_t gh, gw;   // sampling grid per bin
  float count;      // max(gh * gw, 1)
  int64_t ys, xs;   // offsets of this RoI's (out_h * gh) y samples and (out_w * gw) x samples
} roi_plan_entry;

typedef struct {
  roi_plan_entry *e;        // (k)
  roi_axis_sample *table;   // all y and x samples of all RoIs
} roi_plan;

// Fills out[0 .. out_len*grid) with the samples of one axis, float ops in torchvision's order.
static void axis_samples(float start, float bin, int64_t out_len, int64_t grid, int64_t size,
                         int64_t stride, roi_axis_sample *out) {
  for (int64_t p = 0; p < out_len; p++) {
    for (int64_t i = 0; i < grid; i++) {
      roi_axis_sample *s = &out[p * grid + i];
      float v = start + (float)p * bin + ((float)i + 0.5f) * bin / (float)grid;
      if (!(v >= -1.0f && v <= (float)size)) {
        s->lo = s->hi = 0;
        s->wlo = s->whi = 0.0f;
        s->valid = 0;
        continue;
      }
      if (v <= 0.0f) v = 0.0f;
      int64_t lo = (int64_t)v, hi;
      if (lo >= size - 1) {
        hi = lo = size - 1;
        v = (float)lo;
      } else {
        hi = lo + 1;
      }
      float l = v - (float)lo;
      s->lo = lo * stride;
      s->hi = hi * stride;
      s->wlo = 1.0f - l;
      s->whi = l;
      s->valid = 1;
    }
  }
}

// Adaptive grid ceil(size / out) as torchvision computes it; NaN or non-positive sizes give 0
// samples (the bin is then 0).
static int64_t grid_size(int sampling_ratio, float size, int64_t out, int64_t roi) {
  if (sampling_ratio > 0) return sampling_ratio;
  float g = ceilf(size / (float)out);
  if (!(g > 0.0f)) return 0;
  if (g > (float)ROI_MAX_GRID) {
    char msg[160];
    snprintf(msg, sizeof msg, "RoI %lld needs %.0f samples per bin side (> %d): RoI too large",
             (long long)roi, (double)g, ROI_MAX_GRID);
    masa_die(__FILE__, __LINE__, "roi_align", "input", msg);
  }
  return (int64_t)g;
}

// levels (k) or NULL (all level 0); hs, ws, scales indexed by level.
static void plan_build(roi_plan *p, int64_t n, int64_t k, const float *rois, const int *levels,
                       const int64_t *hs, const int64_t *ws, const float *scales, int64_t out_h,
                       int64_t out_w, int sampling_ratio, int aligned) {
  p->e = (roi_plan_entry *)mallocCheck((size_t)k * sizeof(roi_plan_entry));
  int64_t total = 0;
  for (int64_t r = 0; r < k; r++) {
    const float *roi = rois + r * 5;
    roi_plan_entry *e = &p->e[r];
    float b = roi[0];
    if (!(b >= 0.0f && b < (float)n) || b != floorf(b)) {
      char msg[160];
      snprintf(msg, sizeof msg, "RoI %lld has batch index %g, expected an integer in [0, %lld)",
               (long long)r, (double)b, (long long)n);
      masa_die(__FILE__, __LINE__, "roi_align", "input", msg);
    }
    e->batch = (int64_t)b;
    e->level = levels ? levels[r] : 0;
    float scale = scales[e->level];
    float off = aligned ? 0.5f : 0.0f;
    float x1 = roi[1] * scale - off, y1 = roi[2] * scale - off;
    float x2 = roi[3] * scale - off, y2 = roi[4] * scale - off;
    float rw = x2 - x1, rh = y2 - y1;
    if (!aligned) {
      rw = fmaxf(rw, 1.0f);  // fmaxf keeps 1 when rw is NaN; torchvision's std::max keeps NaN,
      rh = fmaxf(rh, 1.0f);  // but NaN start coordinates still make every sample invalid
    }
    e->gh = grid_size(sampling_ratio, rh, out_h, r);
    e->gw = grid_size(sampling_ratio, rw, out_w, r);
    int64_t cnt = e->gh * e->gw;
    e->count = (float)(cnt > 1 ? cnt : 1);
    e->ys = total;
    total += out_h * e->gh;
    e->xs = total;
    total += out_w * e->gw;
  }
  p->table = (roi_axis_sample *)mallocCheck((size_t)total * sizeof(roi_axis_sample));
#pragma omp parallel for schedule(static) if (k > 64)
  for (int64_t r = 0; r < k; r++) {
    const float *roi = rois + r * 5;
    const roi_plan_entry *e = &p->e[r];
    int lv = e->level;
    float scale = scales[lv];
    float off = aligned ? 0.5f : 0.0f;
    float x1 = roi[1] * scale - off, y1 = roi[2] * scale - off;
    float x2 = roi[3] * scale - off, y2 = roi[4] * scale - off;
    float rw = x2 - x1, rh = y2 - y1;
    if (!aligned) {
      rw = fmaxf(rw, 1.0f);
      rh = fmaxf(rh, 1.0f);
    }
    float bin_h = rh / (float)out_h, bin_w = rw / (float)out_w;
    axis_samples(y1, bin_h, out_h, e->gh, hs[lv], ws[lv], p->table + e->ys);
    axis_samples(x1, bin_w, out_w, e->gw, ws[lv], 1, p->table + e->xs);
  }
}

static void plan_free(roi_plan *p) {
  free(p->e);
  free(p->table);
}

// y (k, c, out_h, out_w) from feats[level] (n, c, hs[level], ws[level]).
static void forward_planned(const roi_plan *p, int64_t k, int64_t c, const float *const *feats,
                            const int64_t *hs, const int64_t *ws, int64_t out_h, int64_t out_w,
                            float *y) {
#pragma omp parallel for collapse(2) schedule(dynamic, 16)
  for (int64_t r = 0; r < k; r++) {
    for (int64_t ch = 0; ch < c; ch++) {
      const roi_plan_entry *e = &p->e[r];
      int lv = e->level;
      int64_t hw = hs[lv] * ws[lv];
      const float *plane = feats[lv] + (e->batch * c + ch) * hw;
      const roi_axis_sample *ys = p->table + e->ys, *xs = p->table + e->xs;
      float *out = y + (r * c + ch) * out_h * out_w;
      for (int64_t ph = 0; ph < out_h; ph++) {
        for (int64_t pw = 0; pw < out_w; pw++) {
          float sum = 0.0f;
          for (int64_t iy = 0; iy < e->gh; iy++) {
            const roi_axis_sample *sy = &ys[ph * e->gh + iy];
            if (!sy->valid) continue;
            const float *row_lo = plane + sy->lo, *row_hi = plane + sy->hi;
            for (int64_t ix = 0; ix < e->gw; ix++) {
              const roi_axis_sample *sx = &xs[pw * e->gw + ix];
              if (!sx->valid) continue;
              float w1 = sy->wlo * sx->wlo, w2 = sy->wlo * sx->whi;
              float w3 = sy->whi * sx->wlo, w4 = sy->whi * sx->whi;
              sum += w1 * row_lo[sx->lo] + w2 * row_lo[sx->hi] + w3 * row_hi[sx->lo] +
                     w4 * row_hi[sx->hi];
            }
          }
          out[ph * out_w + pw] = sum / e->count;
        }
      }
    }
  }
}

// dfeats[level] (n, c, hs, ws) += RoIAlign^T dy; entries may be NULL. Each thread owns whole
// (batch, channel) planes of every level and visits RoIs in index order: no races, and the
// summation order per element does not depend on the thread count.
static void backward_planned(const roi_plan *p, int64_t n, int64_t k, int64_t c,
                             float *const *dfeats, const int64_t *hs, const int64_t *ws,
                             int64_t out_h, int64_t out_w, const float *dy) {
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t b = 0; b < n; b++) {
    for (int64_t ch = 0; ch < c; ch++) {
      for (int64_t r = 0; r < k; r++) {
        const roi_plan_entry *e = &p->e[r];
        if (e->batch != b || !dfeats[e->level]) continue;
        int lv = e->level;
        float *plane = dfeats[lv] + (b * c + ch) * hs[lv] * ws[lv];
        const roi_axis_sample *ys = p->table + e->ys, *xs = p->table + e->xs;
        const float *g_roi = dy + (r * c + ch) * out_h * out_w;
        for (int64_t ph = 0; ph < out_h; ph++) {
          for (int64_t pw = 0; pw < out_w; pw++) {
            float g = g_roi[ph * out_w + pw] / e->count;
            for (int64_t iy = 0; iy < e->gh; iy++) {
              const roi_axis_sample *sy = &ys[ph * e->gh + iy];
              if (!sy->valid) continue;
              float *row_lo = plane + sy->lo, *row_hi = plane + sy->hi;
              for (int64_t ix = 0; ix < e->gw; ix++) {
                const roi_axis_sample *sx = &xs[pw * e->gw + ix];
                if (!sx->valid) continue;
                row_lo[sx->lo] += g * (sy->wlo * sx->wlo);
                row_lo[sx->hi] += g * (sy->wlo * sx->whi);
                row_hi[sx->lo] += g * (sy->whi * sx->wlo);
                row_hi[sx->hi] += g * (sy->whi * sx->whi);
              }
            }
          }
        }
      }
    }
  }
}

void roi_align_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, const float *x, int64_t k,
                           const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                           int sampling_ratio, int aligned, float *y) {
  if (k == 0) return;
  roi_plan p;
  plan_build(&p, n, k, rois, NULL, &h, &w, &spatial_scale, out_h, out_w, sampling_ratio, aligned);
  const float *feats[1] = {x};
  forward_planned(&p, k, c, feats, &h, &w, out_h, out_w, y);
  plan_free(&p);
}

void roi_align_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                            const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                            int sampling_ratio, int aligned, const float *dy, float *dx) {
  if (k == 0 || !dx) return;
  roi_plan p;
  plan_build(&p, n, k, rois, NULL, &h, &w, &spatial_scale, out_h, out_w, sampling_ratio, aligned);
  float *dfeats[1] = {dx};
  backward_planned(&p, n, k, c, dfeats, &h, &w, out_h, out_w, dy);
  plan_free(&p);
}

int roi_align_map_level(const float *roi, int num_levels, float finest_scale) {
  // float32 throughout, as mmdet evaluates it on float tensors.
  float scale = sqrtf((roi[3] - roi[1]) * (roi[4] - roi[2]));
  float lv = floorf(log2f(scale / finest_scale + 1e-6f));
  if (!(lv >= 0.0f)) return 0;  // also NaN (negative area)
  if (lv > (float)(num_levels - 1)) return num_levels - 1;
  return (int)lv;
}

static void ml_levels(const roi_align_ml_desc *d, int64_t k, const float *rois, int *levels,
                      float *scales) {
  masa_assert(d->num_levels >= 1 && d->num_levels <= 8);
  for (int l = 0; l < d->num_levels; l++) scales[l] = 1.0f / d->strides[l];
  for (int64_t r = 0; r < k; r++)
    levels[r] = roi_align_map_level(rois + r * 5, d->num_levels, d->finest_scale);
}

void roi_align_multilevel_forward_cpu(const roi_align_ml_desc *d, const float *const *feats,
                                      int64_t k, const float *rois, float *y, int *levels) {
  if (k == 0) return;
  int *lv = (int *)mallocCheck((size_t)k * sizeof(int));
  float scales[8];
  ml_levels(d, k, rois, lv, scales);
  roi_plan p;
  plan_build(&p, d->n, k, rois, lv, d->hs, d->ws, scales, d->out_h, d->out_w, d->sampling_ratio,
             d->aligned);
  forward_planned(&p, k, d->c, feats, d->hs, d->ws, d->out_h, d->out_w, y);
  plan_free(&p);
  if (levels)
    for (int64_t r = 0; r < k; r++) levels[r] = lv[r];
  free(lv);
}

void roi_align_multilevel_backward_cpu(const roi_align_ml_desc *d, int64_t k, const float *rois,
                                       const float *dy, float *const *dfeats) {
  if (k == 0) return;
  int *lv = (int *)mallocCheck((size_t)k * sizeof(int));
  float scales[8];
  ml_levels(d, k, rois, lv, scales);
  roi_plan p;
  plan_build(&p, d->n, k, rois, lv, d->hs, d->ws, scales, d->out_h, d->out_w, d->sampling_ratio,
             d->aligned);
  backward_planned(&p, d->n, k, d->c, dfeats, d->hs, d->ws, d->out_h, d->out_w, dy);
  plan_free(&p);
  free(lv);
}
