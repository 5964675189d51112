// Elementwise glue between ops: the small loops model code would otherwise write inline (residual
// sums, masking, scaling, fills). Flat arrays of n floats; these OVERWRITE or update in place as
// named (they are not backward functions). CUDA twins in kernels/elementwise.cu.
#ifndef MASA_ELEMENTWISE_H
#define MASA_ELEMENTWISE_H

#include <stdint.h>

void ew_fill_cpu(int64_t n, float v, float *y);                          // y = v
void ew_scale_cpu(int64_t n, float a, float *y);                         // y *= a
void ew_div_cpu(int64_t n, float a, float *y);                           // y /= a (not * 1/a)
void ew_axpy_cpu(int64_t n, float a, const float *x, float *y);          // y += a x
void ew_add_cpu(int64_t n, const float *a, const float *b, float *y);    // y = a + b (y may alias)
// g = y > 0 ? g : 0, in place: the ReLU gradient when the forward ran in place.
void ew_relu_mask_cpu(int64_t n, const float *y, float *g);
// y[r] = sum_i a[r, i] b[r, i] over `rows` rows of `cols`, summed in double in index order.
void ew_row_dot_cpu(int64_t rows, int64_t cols, const float *a, const float *b, float *y);
// y[r, i] += s[r] x[r, i] (per-row scale, e.g. a per-image attention weight times a map).
void ew_row_scale_add_cpu(int64_t rows, int64_t cols, const float *s, const float *x, float *y);
// dst[k] = src[idx[k]] (a gather of n elements).
void ew_gather_cpu(int64_t n, const float *src, const int64_t *idx, float *dst);
// dst[idx[k]] += src[k]. The indices must be distinct (the CUDA twin adds without atomics).
void ew_scatter_add_cpu(int64_t n, const float *src, const int64_t *idx, float *dst);

#endif
