// Elementwise glue on the CPU (see ops/elementwise.h). Row reductions in double, fixed order.
#include "ops/elementwise.h"

void ew_fill_cpu(int64_t n, float v, float *y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = v;
}

void ew_scale_cpu(int64_t n, float a, float *y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] *= a;
}

void ew_div_cpu(int64_t n, float a, float *y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] /= a;
}

void ew_axpy_cpu(int64_t n, float a, const float *x, float *y) {
  if (a == 1.0f) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
    return;
  }
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void ew_add_cpu(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ew_relu_mask_cpu(int64_t n, const float *y, float *g) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++)
    if (!(y[i] > 0.0f)) g[i] = 0.0f;
}

void ew_row_dot_cpu(int64_t rows, int64_t cols, const float *a, const float *b, float *y) {
#pragma omp parallel for if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++) {
    double s = 0.0;
    const float *ar = a + r * cols, *br = b + r * cols;
    for (int64_t i = 0; i < cols; i++) s += (double)ar[i] * br[i];
    y[r] = (float)s;
  }
}

void ew_row_scale_add_cpu(int64_t rows, int64_t cols, const float *s, const float *x, float *y) {
#pragma omp parallel for if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < cols; i++) y[r * cols + i] += s[r] * x[r * cols + i];
}

void ew_gather_cpu(int64_t n, const float *src, const int64_t *idx, float *dst) {
  for (int64_t k = 0; k < n; k++) dst[k] = src[idx[k]];
}

void ew_scatter_add_cpu(int64_t n, const float *src, const int64_t *idx, float *dst) {
  for (int64_t k = 0; k < n; k++) dst[idx[k]] += src[k];
}
