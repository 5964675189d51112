// Elementwise activations, row softmax, global average pooling and DyReLU.
// Mirrors torch.relu, F.gelu (exact erf form), torch.sigmoid, mmcv HSigmoid(bias=3, divisor=6)
// = clamp((x + 3) / 6, 0, 1), F.softmax / F.log_softmax over the last dim, AdaptiveAvgPool2d(1),
// and mmdet's DyReLU (dyhead.py). Backward accumulates (see ops/ops.h).
#ifndef MASA_ACTIVATION_H
#define MASA_ACTIVATION_H

#include <stdint.h>

void relu_forward_cpu(int64_t n, const float *x, float *y);
// Uses the forward OUTPUT y (in-place friendly): dx += dy where y > 0.
void relu_backward_cpu(int64_t n, const float *y, const float *dy, float *dx);
void gelu_forward_cpu(int64_t n, const float *x, float *y);
void gelu_backward_cpu(int64_t n, const float *x, const float *dy, float *dx);
void sigmoid_forward_cpu(int64_t n, const float *x, float *y);
// Uses the forward output y: dx += dy * y * (1 - y).
void sigmoid_backward_cpu(int64_t n, const float *y, const float *dy, float *dx);
void hard_sigmoid_forward_cpu(int64_t n, const float *x, float *y);
// Uses the input x: dx += dy / 6 where -3 < x < 3 (PyTorch's hardsigmoid rule at the kinks).
void hard_sigmoid_backward_cpu(int64_t n, const float *x, const float *dy, float *dx);

// Row softmax over the last dim: x, y (rows, cols).
void softmax_forward_cpu(int64_t rows, int64_t cols, const float *x, float *y);
void softmax_backward_cpu(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx);
void log_softmax_forward_cpu(int64_t rows, int64_t cols, const float *x, float *y);
void log_softmax_backward_cpu(int64_t rows, int64_t cols, const float *y, const float *dy,
                              float *dx);

// Global average pool: x (n, c, hw) -> y (n, c).
void global_avg_pool_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x, float *y);
void global_avg_pool_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *dy, float *dx);

// DyReLU (mmdet DyHead task-aware attention, expansion 4):
//   p = GAP(x) (n, c); h = relu(W1 p + b1) (n, c_mid); t = hsig(W2 h + b2) - 0.5 (n, 4c)
//   split t into (a1, b1', a2, b2') of c each; a1 = 2 a1 + 1, a2 = 2 a2;
//   y = max(x * a1 + b1', x * a2 + b2')
// W1 (c_mid, c) [conv1x1 weight (c_mid, c, 1, 1)], b1 (c_mid); W2 (4c, c_mid), b2 (4c).
// cache (dyrelu_cache_size floats) is written by forward and read by backward.
int64_t dyrelu_cache_size(int64_t n, int64_t c, int64_t c_mid);
void dyrelu_forward_cpu(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                        const float *w1, const float *b1, const float *w2, const float *b2,
                        float *y, float *cache);
void dyrelu_backward_cpu(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                         const float *w1, const float *w2, const float *cache, const float *dy,
                         float *dx, float *dw1, float *db1, float *dw2, float *db2);

#endif
