// Dense convolutions and linear layers (im2col + OpenBLAS GEMM). Mirrors torch.nn.functional
// conv2d / conv_transpose2d / linear. See ops/ops.h for the forward-overwrites /
// backward-accumulates rule.
#ifndef MASA_CONV_H
#define MASA_CONV_H

#include <stdint.h>

typedef struct {
  int64_t n, c_in, h, w;  // input (n, c_in, h, w)
  int64_t c_out, kh, kw;  // weight (c_out, c_in / groups, kh, kw)
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int64_t groups;
} conv2d_desc;

// Fills every field: stride s, zero padding p, dilation d, groups g.
conv2d_desc conv2d_make(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                        int64_t s, int64_t p, int64_t d, int64_t g);
int64_t conv2d_out_h(const conv2d_desc *d);  // (h + 2p - d(k-1) - 1) / s + 1
int64_t conv2d_out_w(const conv2d_desc *d);

// x (n, c_in, h, w); w (c_out, c_in/g, kh, kw); bias (c_out) or NULL; y (n, c_out, ho, wo)
void conv2d_forward_cpu(const conv2d_desc *d, const float *x, const float *w, const float *bias,
                        float *y);
// dy (n, c_out, ho, wo); dx like x; dw like w; dbias (c_out). All accumulate, all nullable.
void conv2d_backward_cpu(const conv2d_desc *d, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *dbias);

// Transposed conv, kernel 2, stride 2, no padding (ViTDet SimpleFPN up-sampling).
// x (n, c_in, h, w); w (c_in, c_out, 2, 2) (PyTorch ConvTranspose2d layout); bias (c_out) or NULL;
// y (n, c_out, 2h, 2w)
void conv_transpose2x2_forward_cpu(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                   const float *x, const float *wt, const float *bias, float *y);
void conv_transpose2x2_backward_cpu(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                    const float *x, const float *wt, const float *dy, float *dx,
                                    float *dwt, float *dbias);

// y = x w^T + b. x (n, in); w (out, in) (PyTorch Linear layout); b (out) or NULL; y (n, out)
void linear_forward_cpu(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                        const float *b, float *y);
void linear_backward_cpu(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db);

#endif
