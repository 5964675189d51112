// ViTDet-style SimpleFPN (masa/models/necks/simplefpn.py; masa-spec 1.3(b)): the pyramid
// (masa_adapter.0) of the SAM variants. Input: four ViT block outputs (n, c_vit, h, w) at stride 16.
//   f1 = fpn1(x0): ConvT2x2/2 -> LayerNorm2d (eps 1e-6) -> GELU (erf) -> ConvT2x2/2   stride 4
//   f2 = fpn2(x1): ConvT2x2/2                                                          stride 8
//   f3 = x2 (fpn3 = Identity)                                                          stride 16
//   f4 = MaxPool2d(kernel 2, stride 2)(x3)                                             stride 32
// then the mmdet FPN (model/fpn.h) without norm: lateral 1x1 and output 3x3 convs with bias,
// nearest top-down (use_residual=True), 5th level by max-pool kernel 1 stride 2 (stride 64).
// Names: <prefix>.fpn1.0.{weight (c,c,2,2), bias}, <prefix>.fpn1.1.ln.{weight, bias},
// <prefix>.fpn1.3.*, <prefix>.fpn2.0.*, <prefix>.lateral_convs.{i}.conv.*, <prefix>.fpn_convs.{i}.conv.*
#ifndef MASA_SIMPLEFPN_H
#define MASA_SIMPLEFPN_H

#include "model/fpn.h"

typedef struct {
  int64_t c_vit;   // 768 (SAM-B) | 1280 (SAM-H), every input
  int64_t c_out;   // 256
  int num_outs;    // 5
  int use_residual;  // 1 in MASA (top-down additions)
  int trainable;
} simplefpn_cfg;

typedef struct {
  simplefpn_cfg cfg;
  int up1a_w, up1a_b, ln_w, ln_b, up1b_w, up1b_b, up2_w, up2_b;  // fpn1.0, fpn1.1.ln, fpn1.3, fpn2.0
  fpn fpn;  // lateral_convs / fpn_convs and the extra levels
} simplefpn;

// Keep at one address between forward and backward.
typedef struct {
  const tensor *x;
  tensor t1;             // fpn1.0 output (n, c, 2h, 2w)
  tensor ln;             // fpn1.1 output
  float *ln_mean, *ln_rstd;
  tensor gelu;           // fpn1.2 output
  tensor feat[4];        // f1..f4 (feat[2] aliases x[2])
  int64_t *pool_argmax;  // fpn4
  fpn_acts fpn;
  tensor *out;           // = fpn.out (num_outs)
} simplefpn_acts;

void simplefpn_register(simplefpn *m, param_table *t, const char *prefix,
                        const simplefpn_cfg *cfg);
// Xavier-uniform on the Conv2d layers (lateral / fpn convs, bias 0); the ConvTranspose2d layers
// keep PyTorch's default (kaiming-uniform a=sqrt(5): U(+-1/sqrt(fan_in)), fan_in = c_out*2*2 for
// the (in, out, 2, 2) layout, same bound for the bias); LayerNorm weight 1, bias 0.
void simplefpn_init(const simplefpn *m, param_table *t, uint64_t seed);
// x: 4 maps (n, c_vit, h, w) of one size. a->out[0 .. num_outs).
void simplefpn_forward(const simplefpn *m, model_ctx *ctx, const tensor *x, simplefpn_acts *a);
// dout: num_outs gradients (not modified); dx: 4 buffers like x (accumulated) or NULL.
void simplefpn_backward(const simplefpn *m, model_ctx *ctx, const simplefpn_acts *a,
                        const tensor *dout, tensor *dx);

#endif
