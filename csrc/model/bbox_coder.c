#include "model/bbox_coder.h"

#include <math.h>

delta_xywh_coder delta_xywh_coder_make(const float means[4], const float stds[4]) {
  delta_xywh_coder c;
  for (int i = 0; i < 4; i++) {
    c.means[i] = means[i];
    c.stds[i] = stds[i];
  }
  c.wh_ratio_clip = 16.0 / 1000.0;
  c.clip_border = 1;
  return c;
}

void delta_xywh_encode(const delta_xywh_coder *c, int64_t n, const float *proposals,
                       const float *gt, float *deltas) {
  for (int64_t i = 0; i < n; i++) {
    const float *p = proposals + 4 * i, *g = gt + 4 * i;
    float px = (p[0] + p[2]) * 0.5f, py = (p[1] + p[3]) * 0.5f;
    float pw = p[2] - p[0], ph = p[3] - p[1];
    float gx = (g[0] + g[2]) * 0.5f, gy = (g[1] + g[3]) * 0.5f;
    float gw = g[2] - g[0], gh = g[3] - g[1];
    float d[4] = {(gx - px) / pw, (gy - py) / ph, logf(gw / pw), logf(gh / ph)};
    for (int j = 0; j < 4; j++) deltas[4 * i + j] = (d[j] - c->means[j]) / c->stds[j];
  }
}

// torch.clamp_(min=lo, max=hi): max with lo first, then min with hi (NaN passes through).
static float clampf(float v, float lo, float hi) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

void delta_xywh_decode(const delta_xywh_coder *c, int64_t n, const float *rois,
                       const float *deltas, float img_h, float img_w, float *boxes) {
  const float max_ratio = (float)fabs(log(c->wh_ratio_clip));
  const int clip = c->clip_border && img_h > 0 && img_w > 0;
  for (int64_t i = 0; i < n; i++) {
    const float *p = rois + 4 * i;
    float d[4];
    for (int j = 0; j < 4; j++) d[j] = deltas[4 * i + j] * c->stds[j] + c->means[j];
    float px = (p[0] + p[2]) * 0.5f, py = (p[1] + p[3]) * 0.5f;
    float pw = p[2] - p[0], ph = p[3] - p[1];
    float dw = clampf(d[2], -max_ratio, max_ratio), dh = clampf(d[3], -max_ratio, max_ratio);
    float gx = px + pw * d[0], gy = py + ph * d[1];
    float gw = pw * expf(dw), gh = ph * expf(dh);
    float b[4] = {gx - gw * 0.5f, gy - gh * 0.5f, gx + gw * 0.5f, gy + gh * 0.5f};
    if (clip) {
      b[0] = clampf(b[0], 0.0f, img_w);
      b[2] = clampf(b[2], 0.0f, img_w);
      b[1] = clampf(b[1], 0.0f, img_h);
      b[3] = clampf(b[3], 0.0f, img_h);
    }
    for (int j = 0; j < 4; j++) boxes[4 * i + j] = b[j];
  }
}
