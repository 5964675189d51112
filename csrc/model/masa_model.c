#include "model/masa_model.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"

// Defaults describe MASA-R50 (masa-spec 1.2-3); configs/ override per variant.
const cfg_key model_schema[] = {
    {"model.backbone", CFG_STRING, "resnet", "resnet | vit_sam"},
    {"model.resnet.depth", CFG_INT, "50", "18, 34, 50, 101, 152"},
    {"model.resnet.width", CFG_INT, "64", "base channels (64 official; 16-32 for the CPU demo)"},
    {"model.resnet.style", CFG_STRING, "caffe", "caffe (stride on the 1x1 conv) | pytorch"},
    {"model.resnet.frozen_stages", CFG_INT, "-1", "stages frozen from the stem (-1: none)"},
    {"model.backbone_trainable", CFG_BOOL, "true", "MASA-R50 trains its backbone (BN stats frozen)"},
    {"model.vit.size", CFG_STRING, "b", "SAM ViT size: b | l | h"},
    {"model.vit.img_size", CFG_INT, "1024", "SAM input size (fixes the position embedding)"},
    {"model.vit.depth", CFG_INT, "0", "ViT blocks (0: model.vit.size's, 12 / 24 / 32)"},
    {"model.vit.embed", CFG_INT, "0", "ViT width (0: model.vit.size's, 768 / 1024 / 1280)"},
    {"model.vit.heads", CFG_INT, "0", "attention heads (0: model.vit.size's, 12 / 16 / 16)"},
    {"model.vit.window", CFG_INT, "-1", "window of the windowed blocks (-1: 14; 0: all global)"},
    {"model.vit.global", CFG_INT_LIST, "", "global-attention blocks (empty: model.vit.size's)"},
    {"model.vit.out", CFG_INT_LIST, "",
     "the 4 blocks feeding the pyramid, ascending (empty: the global blocks)"},
    {"model.pyramid", CFG_STRING, "fpn", "fpn | simplefpn"},
    {"model.pyramid_norm", CFG_STRING, "bn_train", "FPN norm: bn_train (SyncBN) | bn_frozen | none"},
    {"model.channels", CFG_INT, "256", "adapter width"},
    {"model.num_outs", CFG_INT, "5", "pyramid levels"},
    {"model.strides", CFG_FLOAT_LIST, "4, 8, 16, 32, 64", "stride of each pyramid level"},
    {"model.fusion", CFG_STRING, "deform", "deform (DeformFusion) | dyhead | none"},
    {"model.fusion_blocks", CFG_INT, "3", "fusion blocks"},
    {"model.fusion_gn_groups", CFG_INT, "16", "GroupNorm groups after each DCN"},
    {"model.offset_mode", CFG_STRING, "reinterpret",
     "high-branch offsets: reinterpret (official mmcv behaviour) | crop | crop_mmcv"},
    {"model.fix_upsample", CFG_BOOL, "false", "upsample the coarser level before its DCN (corrected)"},
    {"model.zero_init_offset", CFG_BOOL, "true", "official init zeroes the offset convs"},
    {"model.adapter_trainable", CFG_BOOL, "true", "train the pyramid and fusion"},
    {"model.track_levels", CFG_INT, "4", "pyramid levels pooled by the RoI heads (4 R50/SAM, 3 Swin)"},
    {"model.track.convs", CFG_INT, "4", "embed head 3x3 convs"},
    {"model.track.conv_channels", CFG_INT, "256", "embed head conv width"},
    {"model.track.gn_groups", CFG_INT, "32", "embed head GroupNorm groups"},
    {"model.track.fc_channels", CFG_INT, "1024", "embed head fc width"},
    {"model.track.embed_channels", CFG_INT, "256", "embedding size"},
    {"model.rpn", CFG_BOOL, "true", "object-prior distillation RPN"},
    {"model.bbox_head", CFG_STRING, "shared4conv1fc", "shared2fc | shared4conv1fc | none"},
    {"model.bbox_fc_channels", CFG_INT, "1024", "box head fc width"},
    {"model.test_scale", CFG_INT_LIST, "1024, 1024", "test-time keep-ratio scale (long, short)"},
    {"model.pad_divisor", CFG_INT, "32", "zero-pad the network input to a multiple of this"},
    {NULL, 0, NULL, NULL}};

static int pick(const char *key, const char *v, const char *const *names, int n, int *out) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v, names[i])) {
      *out = i;
      return MASA_OK;
    }
  char opts[256] = "";
  for (int i = 0; i < n; i++)
    snprintf(opts + strlen(opts), sizeof opts - strlen(opts), "%s%s", i ? ", " : "", names[i]);
  return masa_error("config key '%s': unknown value '%s' (expected one of %s)", key, v, opts);
}

// model.vit.{depth,embed,heads,window,global,out} override the size preset in v (shallow
// encoders for tests and benchmarks). The SimpleFPN takes exactly 4 block outputs.
static int vit_cfg_sizes(const config *c, vit_sam_cfg *v) {
  int64_t depth = config_int(c, "model.vit.depth"), embed = config_int(c, "model.vit.embed");
  int64_t heads = config_int(c, "model.vit.heads"), window = config_int(c, "model.vit.window");
  if (depth) v->depth = (int)depth;
  if (embed) v->embed = embed;
  if (heads) v->heads = heads;
  if (window >= 0) v->window = window;
  if (v->depth < 1 || v->depth > VIT_SAM_MAX_DEPTH)
    return masa_error("model.vit.depth: %d is not in 1..%d", v->depth, VIT_SAM_MAX_DEPTH);
  if (v->embed < 1 || v->heads < 1 || v->embed % v->heads)
    return masa_error("model.vit.embed (%lld) must be a positive multiple of model.vit.heads (%lld)",
                      (long long)v->embed, (long long)v->heads);
  if (window < -1) return masa_error("model.vit.window: %lld is negative", (long long)window);
  int64_t idx[CFG_MAX_LIST];
  int n = config_int_list(c, "model.vit.global", idx, CFG_MAX_LIST);
  if (n > 0) {
    v->n_global = n;
    for (int i = 0; i < n; i++) v->global_idx[i] = (int)idx[i];
  }
  for (int i = 0; i < v->n_global; i++)
    if (v->global_idx[i] < 0 || v->global_idx[i] >= v->depth)
      return masa_error("model.vit.global: block %d is not in 0..%d (model.vit.depth %d)",
                        v->global_idx[i], v->depth - 1, v->depth);
  n = config_int_list(c, "model.vit.out", idx, CFG_MAX_LIST);
  if (n == 0) {  // MASA reads the global blocks
    n = v->n_global;
    for (int i = 0; i < n; i++) idx[i] = v->global_idx[i];
  }
  if (n != 4)
    return masa_error("model.vit.out: the SimpleFPN takes exactly 4 block outputs, got %d", n);
  v->n_out = n;
  for (int i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= v->depth || (i > 0 && idx[i] <= idx[i - 1]))
      return masa_error("model.vit.out: blocks must be ascending in 0..%d (model.vit.depth %d)",
                        v->depth - 1, v->depth);
    v->out_idx[i] = (int)idx[i];
  }
  return MASA_OK;
}

int masa_model_cfg_from_config(const config *c, masa_model_cfg *o) {
  memset(o, 0, sizeof *o);
  int v;
  static const char *const bb[] = {"resnet", "vit_sam"}, *const py[] = {"fpn", "simplefpn"},
                           *const fu[] = {"none", "deform", "dyhead"},
                           *const om[] = {"reinterpret", "crop", "crop_mmcv"},
                           *const bh[] = {"none", "shared2fc", "shared4conv1fc"},
                           *const pn[] = {"none", "bn_frozen", "bn_train"},
                           *const st[] = {"pytorch", "caffe"}, *const vs[] = {"b", "l", "h"};
  if (pick("model.backbone", config_str(c, "model.backbone"), bb, 2, &v)) return MASA_ERR;
  o->backbone = (backbone_kind)v;
  resnet_cfg_default(&o->resnet, (int)config_int(c, "model.resnet.depth"));
  int depth = (int)config_int(c, "model.resnet.depth");
  if (depth != 18 && depth != 34 && depth != 50 && depth != 101 && depth != 152)
    return masa_error("model.resnet.depth: %d is not one of 18, 34, 50, 101, 152", depth);
  o->resnet.base_channels = config_int(c, "model.resnet.width");
  if (o->resnet.base_channels < 1) return masa_error("model.resnet.width must be positive");
  if (pick("model.resnet.style", config_str(c, "model.resnet.style"), st, 2, &v)) return MASA_ERR;
  o->resnet.style = (resnet_style)v;
  o->resnet.frozen_stages = (int)config_int(c, "model.resnet.frozen_stages");
  o->resnet.trainable = config_bool(c, "model.backbone_trainable");
  if (pick("model.vit.size", config_str(c, "model.vit.size"), vs, 3, &v)) return MASA_ERR;
  if (v == 0) vit_sam_cfg_b(&o->vit);
  if (v == 1) vit_sam_cfg_l(&o->vit);
  if (v == 2) vit_sam_cfg_h(&o->vit);
  if (vit_cfg_sizes(c, &o->vit) != MASA_OK) return MASA_ERR;
  o->vit.img_size = config_int(c, "model.vit.img_size");
  if (o->vit.img_size % o->vit.patch) return masa_error("model.vit.img_size must be a multiple of 16");
  if (o->backbone == BACKBONE_VIT_SAM && config_bool(c, "model.backbone_trainable"))
    return masa_error("model.backbone_trainable: the SAM ViT backbone is frozen (forward only)");
  if (pick("model.pyramid", config_str(c, "model.pyramid"), py, 2, &v)) return MASA_ERR;
  o->pyramid = (pyramid_kind)v;
  if (pick("model.pyramid_norm", config_str(c, "model.pyramid_norm"), pn, 3, &v)) return MASA_ERR;
  o->pyramid_norm = v == 0 ? NORM_NONE : v == 1 ? NORM_BN_FROZEN : NORM_BN_TRAIN;
  o->channels = config_int(c, "model.channels");
  o->num_outs = (int)config_int(c, "model.num_outs");
  double strides[CFG_MAX_LIST];
  int ns = config_float_list(c, "model.strides", strides, CFG_MAX_LIST);
  if (o->num_outs < 1 || o->num_outs > MASA_MAX_LEVELS || ns != o->num_outs)
    return masa_error("model.strides: need exactly model.num_outs (%d, at most %d) strides, got %d",
                      o->num_outs, MASA_MAX_LEVELS, ns);
  for (int i = 0; i < ns; i++) o->strides[i] = (float)strides[i];
  if (pick("model.fusion", config_str(c, "model.fusion"), fu, 3, &v)) return MASA_ERR;
  o->fusion = (fusion_kind)v;
  o->fusion_blocks = (int)config_int(c, "model.fusion_blocks");
  o->fusion_gn_groups = config_int(c, "model.fusion_gn_groups");
  if (pick("model.offset_mode", config_str(c, "model.offset_mode"), om, 3, &v)) return MASA_ERR;
  o->offset_mode = (high_offset_mode)v;
  o->fix_upsample = config_bool(c, "model.fix_upsample");
  o->zero_init_offset = config_bool(c, "model.zero_init_offset");
  o->adapter_trainable = config_bool(c, "model.adapter_trainable");
  if (o->channels < 1 || (o->fusion != FUSION_NONE && o->channels % o->fusion_gn_groups))
    return masa_error("model.channels (%lld) must be a positive multiple of model.fusion_gn_groups",
                      (long long)o->channels);
  if (o->fusion != FUSION_NONE && (o->fusion_blocks < 1 || o->fusion_blocks > FUSION_MAX_BLOCKS))
    return masa_error("model.fusion_blocks must be in 1..%d", FUSION_MAX_BLOCKS);
  o->track_levels = (int)config_int(c, "model.track_levels");
  if (o->track_levels < 1 || o->track_levels > o->num_outs)
    return masa_error("model.track_levels must be in 1..model.num_outs");
  o->track = track_head_default_cfg(o->track_levels, o->strides);
  o->track.in_channels = o->channels;
  o->track.num_convs = (int)config_int(c, "model.track.convs");
  o->track.conv_channels = config_int(c, "model.track.conv_channels");
  o->track.gn_groups = config_int(c, "model.track.gn_groups");
  o->track.fc_channels = config_int(c, "model.track.fc_channels");
  o->track.embed_channels = config_int(c, "model.track.embed_channels");
  o->track.trainable = 1;
  if (o->track.num_convs < 0 || o->track.num_convs > TRACK_HEAD_MAX_CONVS ||
      (o->track.num_convs && o->track.conv_channels % o->track.gn_groups))
    return masa_error("model.track.*: convs in 0..%d and conv_channels a multiple of gn_groups",
                      TRACK_HEAD_MAX_CONVS);
  o->with_rpn = config_bool(c, "model.rpn");
  o->rpn_feat_channels = o->channels;
  if (pick("model.bbox_head", config_str(c, "model.bbox_head"), bh, 3, &v)) return MASA_ERR;
  o->with_bbox_head = v != 0;
  if (v) {
    o->bbox = bbox_head_default_cfg(v == 1 ? BBOX_HEAD_SHARED2FC : BBOX_HEAD_SHARED4CONV1FC,
                                    o->track_levels, o->strides);
    o->bbox.in_channels = o->channels;
    o->bbox.conv_channels = o->channels;
    o->bbox.fc_channels = config_int(c, "model.bbox_fc_channels");
    o->bbox.trainable = 1;
  }
  int64_t scale[CFG_MAX_LIST];
  if (config_int_list(c, "model.test_scale", scale, CFG_MAX_LIST) != 2 || scale[0] < 1 || scale[1] < 1)
    return masa_error("model.test_scale: expected two positive integers (long, short)");
  preprocess_cfg_init(&o->pre, (int)scale[0], (int)scale[1], (int)config_int(c, "model.pad_divisor"));
  o->backbone_prefix = o->backbone == BACKBONE_RESNET ? "backbone" : "detector.backbone";
  if (o->backbone == BACKBONE_VIT_SAM && o->pyramid != PYRAMID_SIMPLEFPN)
    return masa_error("model.pyramid: the SAM ViT backbone feeds a simplefpn");
  if (o->backbone == BACKBONE_RESNET && o->pyramid != PYRAMID_FPN)
    return masa_error("model.pyramid: a ResNet backbone feeds an fpn");
  return MASA_OK;
}

void masa_model_build(masa_model *m, const masa_model_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  param_table *t = &m->params;
  param_table_init(t);
  if (cfg->backbone == BACKBONE_RESNET) {
    resnet_register(&m->resnet, t, cfg->backbone_prefix, &cfg->resnet);
    fpn_cfg f = {0};
    f.num_ins = 4;
    for (int i = 0; i < 4; i++) f.c_in[i] = m->resnet.out_channels[i];
    f.c_out = cfg->channels;
    f.num_outs = cfg->num_outs;
    f.norm = cfg->pyramid_norm;
    f.trainable = cfg->adapter_trainable;
    fpn_register(&m->fpn, t, "masa_adapter.0", &f);
  } else {
    vit_sam_register(&m->vit, t, cfg->backbone_prefix, &cfg->vit);
    simplefpn_cfg s = {cfg->vit.embed, cfg->channels, cfg->num_outs, 1, cfg->adapter_trainable};
    simplefpn_register(&m->sfpn, t, "masa_adapter.0", &s);
  }
  if (cfg->fusion == FUSION_DEFORM) {
    deform_fusion_cfg d = {cfg->channels, cfg->channels, cfg->fusion_gn_groups, cfg->fusion_blocks,
                           cfg->offset_mode, cfg->fix_upsample, cfg->adapter_trainable};
    deform_fusion_register(&m->df, t, "masa_adapter.1", &d);
  } else if (cfg->fusion == FUSION_DYHEAD) {
    dyhead_cfg d = {cfg->channels, cfg->channels, cfg->fusion_gn_groups, cfg->fusion_blocks,
                    cfg->offset_mode, cfg->adapter_trainable};
    dyhead_register(&m->dh, t, "masa_adapter.1", &d);
  }
  if (cfg->with_rpn) rpn_head_register(&m->rpn, t, "rpn_head", cfg->channels, cfg->rpn_feat_channels, 3, 1);
  if (cfg->with_bbox_head) bbox_head_register(&m->bbox, t, "roi_head.bbox_head", &cfg->bbox);
  track_head_register(&m->track, t, "track_head", &cfg->track);
  param_table_alloc(t);
}

void masa_model_init(masa_model *m, uint64_t seed) {
  param_table *t = &m->params;
  const masa_model_cfg *c = &m->cfg;
  if (c->backbone == BACKBONE_RESNET) {
    resnet_init(&m->resnet, t, seed);
    fpn_init(&m->fpn, t, seed);
  } else {
    vit_sam_init(&m->vit, t, seed);
    simplefpn_init(&m->sfpn, t, seed);
  }
  if (c->fusion == FUSION_DEFORM) deform_fusion_init(&m->df, t, c->zero_init_offset, seed);
  if (c->fusion == FUSION_DYHEAD) dyhead_init(&m->dh, t, c->zero_init_offset, seed);
  if (c->with_rpn) rpn_head_init(&m->rpn, t, seed);
  if (c->with_bbox_head) bbox_head_init(&m->bbox, t, seed);
  track_head_init(&m->track, t, seed);
}

void masa_model_free(masa_model *m) { param_table_free(&m->params); }

void masa_model_print_summary(const masa_model *m) {
  static const char *groups[] = {"backbone", "detector.backbone", "masa_adapter.0", "masa_adapter.1",
                                 "rpn_head", "roi_head", "track_head"};
  const param_table *t = &m->params;
  log_info("%-20s %12s %12s", "module", "parameters", "trainable");
  int64_t all = 0, all_tr = 0;
  for (int g = 0; g < 7; g++) {
    size_t len = strlen(groups[g]);
    int64_t n = 0, tr = 0;
    for (int i = 0; i < t->count; i++)
      if (!strncmp(t->entries[i].name, groups[g], len) && t->entries[i].name[len] == '.') {
        n += t->entries[i].numel;
        if (t->entries[i].trainable) tr += t->entries[i].numel;
      }
    if (n) log_info("%-20s %12lld %12lld", groups[g], (long long)n, (long long)tr);
    all += n;
    all_tr += tr;
  }
  log_info("%-20s %12lld %12lld  (%.1f MB float32)", "total", (long long)all, (long long)all_tr,
           (double)all * 4.0 / 1e6);
}

void masa_features_forward(const masa_model *m, model_ctx *ctx, const tensor *img,
                           masa_feat_acts *a) {
  const masa_model_cfg *c = &m->cfg;
  masa_assert(m->params.dev.kind == ctx_dev(ctx)->kind);  // weights and activations together
  memset(a, 0, sizeof *a);
  if (c->backbone == BACKBONE_RESNET) {
    // A frozen backbone saves nothing for backward, whatever the step does.
    int training = ctx->training;
    if (!c->resnet.trainable) ctx->training = 0;
    resnet_forward(&m->resnet, ctx, img, &a->bb);
    ctx->training = training;
    a->fpn = arena_alloc_bytes(ctx_host(ctx), sizeof *a->fpn);
    fpn_forward(&m->fpn, ctx, a->bb.out, a->fpn);
    a->pyr = a->fpn->out;
  } else {
    int training = ctx->training;
    ctx->training = 0;
    vit_sam_forward(&m->vit, ctx, img, a->vit_out);
    ctx->training = training;
    a->sfpn = arena_alloc_bytes(ctx_host(ctx), sizeof *a->sfpn);
    simplefpn_forward(&m->sfpn, ctx, a->vit_out, a->sfpn);
    a->pyr = a->sfpn->out;
  }
  if (c->fusion == FUSION_DEFORM) {
    a->df = arena_alloc_bytes(ctx_host(ctx), sizeof *a->df);
    deform_fusion_forward(&m->df, ctx, c->num_outs, a->pyr, a->df);
    a->feats = a->df->out;
  } else if (c->fusion == FUSION_DYHEAD) {
    a->dh = arena_alloc_bytes(ctx_host(ctx), sizeof *a->dh);
    dyhead_forward(&m->dh, ctx, c->num_outs, a->pyr, a->dh);
    a->feats = a->dh->out;
  } else {
    a->feats = a->pyr;
  }
}

void masa_features_backward(const masa_model *m, model_ctx *ctx, const masa_feat_acts *a,
                            const tensor *dfeats) {
  const masa_model_cfg *c = &m->cfg;
  if (!c->adapter_trainable && !(c->backbone == BACKBONE_RESNET && c->resnet.trainable)) return;
  int L = c->num_outs;
  // Gradient w.r.t. the pyramid outputs.
  const tensor *dpyr = dfeats;
  if (c->fusion != FUSION_NONE) {
    tensor *g = arena_alloc_bytes(ctx_host(ctx), (size_t)L * sizeof(tensor));
    for (int l = 0; l < L; l++) g[l] = ctx_zeros_like(ctx, &a->pyr[l]);
    if (c->fusion == FUSION_DEFORM)
      deform_fusion_backward(&m->df, ctx, a->df, dfeats, g);
    else
      dyhead_backward(&m->dh, ctx, a->dh, dfeats, g);
    dpyr = g;
  }
  if (c->backbone == BACKBONE_RESNET) {
    int bb_trains = c->resnet.trainable;
    tensor *dbb = NULL;
    if (bb_trains) {
      dbb = arena_alloc_bytes(ctx_host(ctx), 4 * sizeof(tensor));
      for (int i = 0; i < 4; i++) dbb[i] = ctx_zeros_like(ctx, &a->bb.out[i]);
    }
    fpn_backward(&m->fpn, ctx, a->fpn, dpyr, dbb);
    if (bb_trains) {
      const tensor *d[4] = {&dbb[0], &dbb[1], &dbb[2], &dbb[3]};
      resnet_backward(&m->resnet, ctx, &a->bb, d, NULL);
    }
  } else {
    simplefpn_backward(&m->sfpn, ctx, a->sfpn, dpyr, NULL);  // the ViT is frozen
  }
}

void masa_embed_rois(const masa_model *m, model_ctx *ctx, const tensor *feats, int64_t k,
                     const float *rois, float *out) {
  arena_mark_t mark = arena_mark(ctx->arena);
  track_head_acts a;
  float *rois_d = arena_floats(ctx->arena, k * 5);
  dev_upload(ctx_dev(ctx), rois_d, rois, (size_t)(k * 5) * sizeof(float));
  int training = ctx->training;
  ctx->training = 0;
  track_head_forward(&m->track, ctx, feats, k, rois_d, &a);
  ctx->training = training;
  dev_download(ctx_dev(ctx), out, a.embed.data,
               (size_t)(k * m->cfg.track.embed_channels) * sizeof(float));
  arena_rewind(ctx->arena, mark);
}

int masa_model_load(const config *c, const char *weights, masa_model *m) {
  masa_model_cfg mc;
  if (masa_model_cfg_from_config(c, &mc) != MASA_OK) return MASA_ERR;
  masa_model_build(m, &mc);
  h5file *f = h5_open_read(weights);
  int rc = f ? h5_load_params(f, &m->params, 1) : MASA_ERR;
  if (f) h5_close(f);
  if (rc != MASA_OK) masa_model_free(m);
  return rc;
}
