#include "model/roi_trunk.h"

#include "ops/conv.h"

const float *roi_trunk_forward(const roi_trunk *r, model_ctx *ctx, tensor *roi_feats,
                               conv_module_acts *conv_acts, tensor *fcs, int64_t *width) {
  param_table *t = ctx->params;
  int64_t k = r->k, s = r->roi->out_size;
  *roi_feats = ctx_tensor4(ctx, k, r->feats[0].shape[1], s, s);
  roi_extractor_forward(ctx_dev(ctx), r->roi, r->feats, k, r->rois, roi_feats->data, NULL);
  const tensor *x = roi_feats;
  for (int i = 0; i < r->num_convs; i++) {
    conv_module_forward(&r->convs[i], ctx, x, &conv_acts[i]);
    x = &conv_acts[i].out;
  }
  const float *h = x->data;
  int64_t in = r->flat;
  for (int i = 0; i < r->num_fcs; i++) {
    fcs[i] = ctx_tensor(ctx, 2, (int64_t[]){k, r->fc_channels});
    linear_forward(ctx_dev(ctx), k, in, r->fc_channels, h, param_ptr(t, r->fc_w[i]),
                   param_ptr(t, r->fc_b[i]), fcs[i].data);
    relu_forward(ctx_dev(ctx), k * r->fc_channels, fcs[i].data, fcs[i].data);
    h = fcs[i].data;
    in = r->fc_channels;
  }
  *width = in;
  return h;
}

const float *roi_trunk_output(const roi_trunk *r, int64_t *width) {
  *width = r->num_fcs > 0 ? r->fc_channels : r->flat;
  return r->num_fcs > 0 ? r->fcs[r->num_fcs - 1].data
         : r->num_convs > 0 ? r->conv_acts[r->num_convs - 1].out.data
                            : r->roi_feats;
}

void roi_trunk_backward(const roi_trunk *r, model_ctx *ctx, float *dx, tensor *d_feats) {
  param_table *t = ctx->params;
  int64_t k = r->k;
  for (int i = r->num_fcs - 1; i >= 0; i--) {
    // dx is the gradient w.r.t. relu(fc_i(.)): mask by the saved output.
    ew_relu_mask(ctx_dev(ctx), k * r->fc_channels, r->fcs[i].data, dx);
    const float *xin = i > 0 ? r->fcs[i - 1].data
                       : r->num_convs > 0 ? r->conv_acts[r->num_convs - 1].out.data
                                          : r->roi_feats;
    int64_t in_i = i > 0 ? r->fc_channels : r->flat;
    float *dxin = arena_zeros(ctx->arena, k * in_i);
    linear_backward(ctx_dev(ctx), k, in_i, r->fc_channels, xin, param_ptr(t, r->fc_w[i]),
                        dx, dxin, r->trainable ? param_grad_ptr(t, r->fc_w[i]) : NULL,
                        r->trainable ? param_grad_ptr(t, r->fc_b[i]) : NULL);
    dx = dxin;
  }
  // dx: gradient of the flattened conv (or RoI) output (k, c, s, s).
  int64_t s = r->roi->out_size;
  tensor g = tensor_view(dx, 4, (int64_t[]){k, r->flat / (s * s), s, s});
  for (int i = r->num_convs - 1; i >= 0; i--) {
    if (i == 0 && !d_feats) {  // the RoI features' gradient is not needed
      conv_module_backward(&r->convs[i], ctx, &r->conv_acts[i], &g, NULL);
      return;
    }
    tensor gin = ctx_zeros_like(ctx, r->conv_acts[i].x);
    conv_module_backward(&r->convs[i], ctx, &r->conv_acts[i], &g, &gin);
    g = gin;
  }
  roi_extractor_backward(ctx_dev(ctx), r->roi, r->feats, k, r->rois, g.data, d_feats);
}
