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
// - Sample positions and bilinear weights are computed in float32 in torchvision's operation
//   order. They are separable (y depends on (ph, iy), x on (pw, ix)), so per RoI and axis we
//   build once, for every output row/column, the list of pixels its samples touch with their
//   summed weights ("taps"); a bin is then sum_y wy * sum_x wx * x[y, x] / count. That equals
//   torchvision's per-sample sum up to float32 reassociation, and costs ~(grid+1)^2 loads per
//   bin instead of 4 grid^2.
// - Forward and backward run channel-major: each thread owns whole (batch, channel) planes and
//   visits RoIs in index order, so a plane stays in cache across RoIs, dx is race-free, and
//   every result is bit-identical for any thread count.
// - Multi-level (mmdet SingleRoIExtractor): level from roi_align_map_level; NaN sizes go to 0.
#include "ops/roi_align.h"

#include <math.h>
#include <stdio.h>

#include "core/check.h"

// Adaptive grids beyond this many samples per bin side mean a corrupt RoI (a 1024-pixel image
// at stride 4 with a 7x7 output needs 37).
#define ROI_MAX_GRID 4096

typedef struct {
  int64_t idx;  // pixel index along the axis (rows pre-multiplied by the row stride)
  float w;      // summed bilinear weight of every sample of this output row/column on it
} roi_tap;

typedef struct {
  int64_t first, count;  // taps [first, first + count) of the tap array
} roi_tap_run;

typedef struct {
  int64_t batch;
  int level;
  int64_t gh, gw;  // sampling grid per bin
  float count;     // max(gh * gw, 1)
  int64_t ys, xs;  // first roi_tap_run of this RoI's out_h rows and out_w columns
} roi_plan_entry;

typedef struct {
  roi_plan_entry *e;  // (k)
  roi_tap_run *runs;  // (k * (out_h + out_w))
  roi_tap *taps;      // per RoI at most 2 * (out_h * gh + out_w * gw)
} roi_plan;

// Adds weight w on pixel idx to the run that ends at taps[*end]. Samples come in increasing
// coordinate order, so a pixel seen before is among the last two taps.
static void tap_add(roi_tap *taps, int64_t begin, int64_t *end, int64_t idx, float w) {
  for (int64_t t = *end - 1; t >= begin && t >= *end - 2; t--) {
    if (taps[t].idx == idx) {
      taps[t].w += w;
      return;
    }
  }
  taps[*end].idx = idx;
  taps[*end].w = w;
  (*end)++;
}

// Taps of one axis: for each output index p, the pixels touched by its `grid` samples. Float ops
// in torchvision's order. Returns the number of taps written from `tap0`.
static int64_t axis_taps(float start, float bin, int64_t out_len, int64_t grid, int64_t size,
                         int64_t stride, roi_tap_run *runs, roi_tap *taps, int64_t tap0) {
  int64_t end = tap0;
  for (int64_t p = 0; p < out_len; p++) {
    int64_t begin = end;
    for (int64_t i = 0; i < grid; i++) {
      float v = start + (float)p * bin + ((float)i + 0.5f) * bin / (float)grid;
      if (!(v >= -1.0f && v <= (float)size)) continue;  // also NaN
      if (v <= 0.0f) v = 0.0f;
      int64_t lo = (int64_t)v, hi;
      if (lo >= size - 1) {
        hi = lo = size - 1;
        v = (float)lo;
      } else {
        hi = lo + 1;
      }
      float l = v - (float)lo;
      tap_add(taps, begin, &end, lo * stride, 1.0f - l);
      tap_add(taps, begin, &end, hi * stride, l);
    }
    runs[p].first = begin;
    runs[p].count = end - begin;
  }
  return end - tap0;
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

// Start and size of a RoI on its feature map, as torchvision.
static void roi_box(const float *roi, float scale, int aligned, float *x1, float *y1, float *rw,
                    float *rh) {
  float off = aligned ? 0.5f : 0.0f;
  *x1 = roi[1] * scale - off;
  *y1 = roi[2] * scale - off;
  *rw = (roi[3] * scale - off) - *x1;
  *rh = (roi[4] * scale - off) - *y1;
  if (!aligned) {  // as std::max(size, 1): a NaN size stays NaN
    *rw = *rw < 1.0f ? 1.0f : *rw;
    *rh = *rh < 1.0f ? 1.0f : *rh;
  }
}

// levels (k) or NULL (all level 0); hs, ws, scales indexed by level.
static void plan_build(roi_plan *p, int64_t n, int64_t k, const float *rois, const int *levels,
                       const int64_t *hs, const int64_t *ws, const float *scales, int64_t out_h,
                       int64_t out_w, int sampling_ratio, int aligned) {
  p->e = (roi_plan_entry *)mallocCheck((size_t)k * sizeof(roi_plan_entry));
  p->runs = (roi_tap_run *)mallocCheck((size_t)(k * (out_h + out_w)) * sizeof(roi_tap_run));
  int64_t *tap0 = (int64_t *)mallocCheck((size_t)k * sizeof(int64_t));
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
    float x1, y1, rw, rh;
    roi_box(roi, scales[e->level], aligned, &x1, &y1, &rw, &rh);
    e->gh = grid_size(sampling_ratio, rh, out_h, r);
    e->gw = grid_size(sampling_ratio, rw, out_w, r);
    int64_t cnt = e->gh * e->gw;
    e->count = (float)(cnt > 1 ? cnt : 1);
    e->ys = r * (out_h + out_w);
    e->xs = e->ys + out_h;
    tap0[r] = total;
    total += 2 * (out_h * e->gh + out_w * e->gw);
  }
  p->taps = (roi_tap *)mallocCheck((size_t)total * sizeof(roi_tap));
#pragma omp parallel for schedule(dynamic, 8) if (k > 64)
  for (int64_t r = 0; r < k; r++) {
    const roi_plan_entry *e = &p->e[r];
    int lv = e->level;
    float x1, y1, rw, rh;
    roi_box(rois + r * 5, scales[lv], aligned, &x1, &y1, &rw, &rh);
    int64_t used = axis_taps(y1, rh / (float)out_h, out_h, e->gh, hs[lv], ws[lv],
                             p->runs + e->ys, p->taps, tap0[r]);
    axis_taps(x1, rw / (float)out_w, out_w, e->gw, ws[lv], 1, p->runs + e->xs, p->taps,
              tap0[r] + used);
  }
  free(tap0);
}

static void plan_free(roi_plan *p) {
  free(p->e);
  free(p->runs);
  free(p->taps);
}

// y (k, c, out_h, out_w) from feats[level] (n, c, hs[level], ws[level]).
static void forward_planned(const roi_plan *p, int64_t n, int64_t k, int64_t c,
                            const float *const *feats, const int64_t *hs, const int64_t *ws,
                            int64_t out_h, int64_t out_w, float *y) {
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int64_t b = 0; b < n; b++) {
    for (int64_t ch = 0; ch < c; ch++) {
      for (int64_t r = 0; r < k; r++) {
        const roi_plan_entry *e = &p->e[r];
        if (e->batch != b) continue;
        int lv = e->level;
        const float *plane = feats[lv] + (b * c + ch) * hs[lv] * ws[lv];
        float *out = y + (r * c + ch) * out_h * out_w;
        for (int64_t ph = 0; ph < out_h; ph++) {
          const roi_tap_run *ry = &p->runs[e->ys + ph];
          const roi_tap *ty = p->taps + ry->first;
          for (int64_t pw = 0; pw < out_w; pw++) {
            const roi_tap_run *rx = &p->runs[e->xs + pw];
            const roi_tap *tx = p->taps + rx->first;
            float sum = 0.0f;
            for (int64_t i = 0; i < ry->count; i++) {
              const float *row = plane + ty[i].idx;
              float rs = 0.0f;
              for (int64_t j = 0; j < rx->count; j++) rs += tx[j].w * row[tx[j].idx];
              sum += ty[i].w * rs;
            }
            out[ph * out_w + pw] = sum / e->count;
          }
        }
      }
    }
  }
}

// dfeats[level] (n, c, hs, ws) += RoIAlign^T dy; entries may be NULL.
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
        const float *g_roi = dy + (r * c + ch) * out_h * out_w;
        for (int64_t ph = 0; ph < out_h; ph++) {
          const roi_tap_run *ry = &p->runs[e->ys + ph];
          const roi_tap *ty = p->taps + ry->first;
          for (int64_t pw = 0; pw < out_w; pw++) {
            const roi_tap_run *rx = &p->runs[e->xs + pw];
            const roi_tap *tx = p->taps + rx->first;
            float g = g_roi[ph * out_w + pw] / e->count;
            for (int64_t i = 0; i < ry->count; i++) {
              float *row = plane + ty[i].idx;
              float gy = g * ty[i].w;
              for (int64_t j = 0; j < rx->count; j++) row[tx[j].idx] += gy * tx[j].w;
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
  forward_planned(&p, n, k, c, feats, &h, &w, out_h, out_w, y);
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
  forward_planned(&p, d->n, k, d->c, feats, d->hs, d->ws, d->out_h, d->out_w, y);
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
