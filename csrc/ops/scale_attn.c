// DyHead scale-aware attention on the CPU (ops/scale_attn.h). Per image in order; the dot
// products in double, as the loops in model/dyhead.c did before they moved here.
#include "ops/scale_attn.h"

#include "ops/activation.h"

void scale_attn_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *f, const float *w,
                            const float *bias, float *p, float *z, float *a) {
  global_avg_pool_forward_cpu(n, c, hw, f, p);
  for (int64_t b = 0; b < n; b++) {
    double s = bias[0];
    for (int64_t ch = 0; ch < c; ch++) s += (double)w[ch] * p[b * c + ch];
    float zb = (float)s, r = zb > 0.0f ? zb : 0.0f, v = (r + 3.0f) / 6.0f;
    z[b] = zb;
    a[b] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  }
}

void scale_attn_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *f, const float *p,
                             const float *z, const float *a, const float *w, const float *dterm,
                             float *df, float *dw, float *db) {
  int64_t chw = c * hw;
  for (int64_t b = 0; b < n; b++) {
    const float *fb = f + b * chw, *g = dterm + b * chw;
    double da = 0.0;
    for (int64_t i = 0; i < chw; i++) da += (double)g[i] * fb[i];
    float zb = z[b], r = zb > 0.0f ? zb : 0.0f, v = (r + 3.0f) / 6.0f;
    double dz = (v >= 0.0f && v <= 1.0f && zb > 0.0f) ? da / 6.0 : 0.0;
    if (dw)
      for (int64_t ch = 0; ch < c; ch++) dw[ch] += (float)(dz * p[b * c + ch]);
    if (db) db[0] += (float)dz;
    if (!df) continue;
    float ab = a[b];
    float *dfb = df + b * chw;
    for (int64_t ch = 0; ch < c; ch++) {
      float dp = (float)(dz * w[ch] / (double)hw);
      for (int64_t i = 0; i < hw; i++) dfb[ch * hw + i] += g[ch * hw + i] * ab + dp;
    }
  }
}
