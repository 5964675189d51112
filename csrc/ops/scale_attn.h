// DyHead scale-aware attention (mmdet DyHeadBlock.scale_attn_module; model/dyhead.h): one scalar
// per image from a feature map f (n, c, hw):
//   p = GAP(f) (n, c),  z = bias + w . p (n),
//   a = HSigmoid(ReLU(z)) = clamp((relu(z) + 3) / 6, 0, 1)
// The module applies it as s += f * a (ew_row_scale_add). z is summed in double from the bias,
// channels in order. Backward takes dterm, the gradient of the product f * a, and handles both
// paths into f (through the product and through GAP). CUDA twins in kernels/scale_attn.cu.
#ifndef MASA_SCALE_ATTN_H
#define MASA_SCALE_ATTN_H

#include <stdint.h>

// f (n, c, hw); w (c); bias (1). Writes p (n, c), z (n), a (n).
void scale_attn_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *f, const float *w,
                            const float *bias, float *p, float *z, float *a);
// Accumulates df (n, c, hw) += dterm * a + (GAP path), dw (c), db (1); each nullable.
// torch.clamp passes the gradient on [0, 1] inclusive; ReLU where z > 0.
void scale_attn_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *f, const float *p,
                             const float *z, const float *a, const float *w, const float *dterm,
                             float *df, float *dw, float *db);

#endif
