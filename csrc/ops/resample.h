// Pooling and resampling of NCHW maps (x viewed as (n*c, h, w) planes).
// - max_pool2d: no padding, floor mode: ho = (h - k) / s + 1 (k 1 s 2 gives ceil(h/2), as
//   mmdet FPN's extra levels; k 2 s 2 gives floor(h/2), as SimpleFPN). Ties go to the first
//   maximum in row-major scan order, as PyTorch's CPU kernel.
// - upsample_nearest: PyTorch's legacy 'nearest' rule: src = min(floor(dst * (in / out)), in - 1)
//   with the scale computed in float as in/out.
// - resize_bilinear_ac: bilinear with align_corners=True: src = dst * (in - 1) / (out - 1)
//   (0 when out == 1).
#ifndef MASA_RESAMPLE_H
#define MASA_RESAMPLE_H

#include <stdint.h>

int64_t max_pool2d_out_size(int64_t in, int64_t k, int64_t s);
// argmax (n, c, ho, wo) or NULL: flat index into the (h, w) plane of each max, for backward.
void max_pool2d_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                            const float *x, float *y, int64_t *argmax);
void max_pool2d_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                             const int64_t *argmax, const float *dy, float *dx);

void upsample_nearest_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                  int64_t wo, const float *x, float *y);
void upsample_nearest_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                   int64_t wo, const float *dy, float *dx);

void resize_bilinear_ac_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                    int64_t wo, const float *x, float *y);
void resize_bilinear_ac_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                     int64_t wo, const float *dy, float *dx);

// ResNet stem max-pool: kernel 3, stride 2, padding 1 over `planes` maps of (h, w); output
// ((h - 1) / 2 + 1, (w - 1) / 2 + 1). Padding never wins (PyTorch pads with -inf); ties keep the
// first maximum in row-major window order; NaN propagates. argmax (planes, ho, wo) flat (h, w)
// index within the plane, or NULL. Backward accumulates dy into dx at argmax, in output order.
int64_t max_pool3s2p1_out_size(int64_t in);
void max_pool3s2p1_forward_cpu(int64_t planes, int64_t h, int64_t w, const float *x, float *y,
                               int64_t *argmax);
void max_pool3s2p1_backward_cpu(int64_t planes, int64_t h, int64_t w, const int64_t *argmax,
                                const float *dy, float *dx);

#endif
