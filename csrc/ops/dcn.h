// Modulated deformable convolution v2 (mmcv ModulatedDeformConv2d; groups 1, deform_groups 1,
// no bias in MASA but supported).
// - offset: 2*kh*kw channels of (dy, dx) pairs, y first; tap t = i*kw + j (row-major).
// - sampling point for output (oh, ow), tap (i, j):
//     y = oh*stride - pad + i*dil + dy,  x = ow*stride - pad + j*dil + dx
//   value = 0 unless -1 < y < h and -1 < x < w; otherwise bilinear with out-of-range corners as 0
//   (mmcv's rule, used in forward AND backward; torchvision's backward differs exactly at -1).
// - mask: kh*kw channels, already passed through sigmoid by the caller; multiplies each sample.
// Offsets and masks are read through strides so that one op covers every layout MASA needs:
//   element (b, ch, oh, ow) of offset is offset[b*off.batch + ch*off.channel + oh*off.row + ow].
//   Contiguous (n, 18, ho, wo):           batch 18*ho*wo, channel ho*wo, row wo.
//   Channels [c0, c0+18) of an (n, C, ho, wo) conv output: base + c0*ho*wo, batch C*ho*wo.
//   mmcv's "offset reinterpretation" (masa-spec 1.4.1, high branch: offsets computed at
//   (hl, wl) but read with the output's strides): base + c0*hl*wl, batch C*hl*wl,
//   channel ho*wo, row wo.
//   Top-left crop of a larger map (one mmdet revision): channel hl*wl, row wl.
#ifndef MASA_DCN_H
#define MASA_DCN_H

#include <stdint.h>

typedef struct {
  int64_t batch, channel, row;  // element strides; the column stride is 1
} dcn_strides;

typedef struct {
  int64_t n, c_in, h, w;  // input (n, c_in, h, w)
  int64_t c_out, kh, kw;  // weight (c_out, c_in, kh, kw)
  int64_t stride, pad, dil;
  int64_t ho, wo;         // output size: (h + 2 pad - dil (kh - 1) - 1) / stride + 1
  dcn_strides off, msk;   // how offset and mask are read (see above)
} dcn_desc;

// Fills sizes and contiguous offset/mask strides for (n, 2*kh*kw, ho, wo) / (n, kh*kw, ho, wo).
dcn_desc dcn_make(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                  int64_t stride, int64_t pad, int64_t dil);

// x (n, c_in, h, w); offset, mask strided as in d; weight (c_out, c_in, kh, kw); bias (c_out) or
// NULL; y (n, c_out, ho, wo)
void dcn_forward_cpu(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                     const float *weight, const float *bias, float *y);
// dy (n, c_out, ho, wo). doffset / dmask use the same strides as offset / mask. All accumulate.
void dcn_backward_cpu(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                      const float *weight, const float *dy, float *dx, float *doffset,
                      float *dmask, float *dweight, float *dbias);

#endif
