// The training loop (see trainer.h). Reproducibility: every random draw is keyed by
// (seed, role, step, global image index) or comes from the loader's (seed, epoch, position)
// counters, so a run resumed from a checkpoint continues bit-exactly (same thread count: BLAS
// GEMM rounding depends on it).
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "core/check.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/log.h"
#include "data/loader.h"
#include "model/masa_model.h"
#include "train/checkpoint.h"
#include "train/det_losses.h"
#include "train/det_targets.h"
#include "train/dispatch_train.h"
#include "train/losses.h"
#include "train/metrics_log.h"
#include "train/optim.h"
#include "train/plot.h"
#include "train/sample.h"
#include "train/schedule.h"
#include "train/track_targets.h"
#include "train/train_step.h"

const cfg_key train_schema[] = {
    {"train.run_dir", CFG_STRING, "runs/masa", "checkpoints, metrics.jsonl, loss.png, weights.h5"},
    {"train.max_epochs", CFG_INT, "12", "epochs (official 12)"},
    {"train.max_iters", CFG_INT, "0", "> 0: stop after this many iterations instead"},
    {"train.log_interval", CFG_INT, "10", "iterations between metric lines"},
    {"train.ckpt_interval", CFG_INT, "500", "iterations between checkpoints (the last is always saved)"},
    {"train.ckpt_keep", CFG_INT, "3", "newest checkpoints kept"},
    {"train.seed", CFG_INT, "0", "model initialisation and sampling seed"},
    {"train.proposals", CFG_STRING, "rpn",
     "rpn (official: RPN proposals per view) | jitter (GT boxes jittered; no RPN needed)"},
    {"train.jitter_copies", CFG_INT, "8", "jitter mode: proposals per GT box"},
    {"train.jitter_scale", CFG_FLOAT, "0.1", "jitter mode: noise scale relative to box size"},
    {"train.jitter_random", CFG_INT, "64", "jitter mode: random boxes per view (negatives)"},
    {"train.distill", CFG_BOOL, "true",
     "train the object-prior branch (RPN + box head losses on the key view) alongside"},
    {"loss.track_weight", CFG_FLOAT, "0.25", "UnbiasedContrastLoss weight (official 0.25)"},
    {"loss.rpn_cls_weight", CFG_FLOAT, "1.0", "RPN sigmoid cross-entropy weight"},
    {"loss.rpn_bbox_weight", CFG_FLOAT, "1.0", "RPN box regression weight"},
    {"loss.rpn_bbox", CFG_STRING, "smooth_l1", "RPN box loss: smooth_l1 (beta 1/9; GDINO/SAM) | l1 (R50)"},
    {"loss.cls_weight", CFG_FLOAT, "1.0", "box head cross-entropy weight"},
    {"loss.bbox_weight", CFG_FLOAT, "1.0", "box head L1 weight"},
    {"loss.track_aux_weight", CFG_FLOAT, "1.0", "MarginL2Loss weight (official 1.0)"},
    {"loss.margin_pos", CFG_FLOAT, "0", "MarginL2Loss pos_margin"},
    {"loss.margin_neg", CFG_FLOAT, "0.1", "MarginL2Loss neg_margin"},
    {"loss.neg_pos_ub", CFG_FLOAT, "3", "MarginL2Loss neg_pos_ub"},
    {"loss.hard_mining", CFG_BOOL, "true", "MarginL2Loss hard_mining"},
    {NULL, 0, NULL, NULL}};

typedef struct {
  int64_t max_epochs, max_iters, log_interval, ckpt_interval, ckpt_keep;
  uint64_t seed;
  int jitter;
  jitter_proposal_cfg jit;
  float w_track, w_aux;
  margin_l2_cfg margin;
  int distill;
  float w_rpn_cls, w_rpn_bbox, w_cls, w_bbox;
  reg_loss_cfg rpn_reg;
} train_opts;

static int train_opts_from_config(const config *c, train_opts *o) {
  memset(o, 0, sizeof *o);
  o->max_epochs = config_int(c, "train.max_epochs");
  o->max_iters = config_int(c, "train.max_iters");
  o->log_interval = config_int(c, "train.log_interval");
  o->ckpt_interval = config_int(c, "train.ckpt_interval");
  o->ckpt_keep = config_int(c, "train.ckpt_keep");
  o->seed = (uint64_t)config_int(c, "train.seed");
  const char *p = config_str(c, "train.proposals");
  if (strcmp(p, "rpn") && strcmp(p, "jitter"))
    return masa_error("train.proposals: unknown value '%s' (expected rpn or jitter)", p);
  o->jitter = !strcmp(p, "jitter");
  o->jit = jitter_proposal_cfg_default();
  o->jit.copies_per_gt = (int)config_int(c, "train.jitter_copies");
  o->jit.scale = (float)config_float(c, "train.jitter_scale");
  o->jit.num_random = (int)config_int(c, "train.jitter_random");
  o->w_track = (float)config_float(c, "loss.track_weight");
  o->w_aux = (float)config_float(c, "loss.track_aux_weight");
  o->margin.pos_margin = (float)config_float(c, "loss.margin_pos");
  o->margin.neg_margin = (float)config_float(c, "loss.margin_neg");
  o->margin.neg_pos_ub = (float)config_float(c, "loss.neg_pos_ub");
  o->margin.hard_mining = config_bool(c, "loss.hard_mining");
  o->distill = config_bool(c, "train.distill");
  o->w_rpn_cls = (float)config_float(c, "loss.rpn_cls_weight");
  o->w_rpn_bbox = (float)config_float(c, "loss.rpn_bbox_weight");
  o->w_cls = (float)config_float(c, "loss.cls_weight");
  o->w_bbox = (float)config_float(c, "loss.bbox_weight");
  o->rpn_reg = reg_loss_rpn();
  const char *rb = config_str(c, "loss.rpn_bbox");
  if (!strcmp(rb, "l1"))
    o->rpn_reg.kind = REG_LOSS_L1;
  else if (strcmp(rb, "smooth_l1"))
    return masa_error("loss.rpn_bbox: unknown value '%s' (expected smooth_l1 or l1)", rb);
  if (o->max_epochs < 1 || o->log_interval < 1 || o->ckpt_interval < 0 || o->ckpt_keep < 1 ||
      o->jit.copies_per_gt < 0 || o->jit.num_random < 0)
    return masa_error("train.*: max_epochs, log_interval, ckpt_keep >= 1; ckpt_interval, "
                      "jitter_copies, jitter_random >= 0");
  return MASA_OK;
}

// Per-step numbers, summed over the images of this rank (then over ranks for the log).
enum {
  T_LOSS_TRACK, T_LOSS_AUX, T_LOSS_RPN_CLS, T_LOSS_RPN_BBOX, T_LOSS_CLS, T_LOSS_BBOX,
  T_KEY_ROIS, T_REF_ROIS, T_IMAGES, T_DET_ROIS, T_COUNT
};
#define T_NUM_LOSSES 6
static const char *loss_names[T_NUM_LOSSES] = {"loss_track", "loss_track_aux", "loss_rpn_cls",
                                               "loss_rpn_bbox", "loss_cls", "loss_bbox"};

typedef struct {
  const masa_model *m;
  const train_opts *o;
  anchor_generator anchors;
  delta_xywh_coder coder;
  track_sample_cfg samp;
  // Called once every head's backward is done and before the features' (NULL: none): the
  // data-parallel trainer starts the heads' gradient all-reduce there, beside the rest.
  void (*heads_done)(void *hook);
  void *hook;
} step_ctx;

// Host access to step tensors. On the cpu these are the tensors themselves (no copies: the CPU
// path is unchanged); on a device, small results the host needs (RPN maps for proposals and
// losses, head outputs, embeddings) are downloaded into the host scratch arena, and gradients
// computed on the host are uploaded back into the device tensors.
// A zeroed host buffer for the gradient of device tensor dt (dt itself on the cpu).
static tensor host_grad(model_ctx *ctx, const tensor *dt) {
  if (dev_is_host(ctx_dev(ctx))) return *dt;
  tensor h = *dt;
  h.data = arena_zeros(ctx_host(ctx), tensor_numel(dt));
  return h;
}

// Adds host gradient h into device tensor dt (no-op on the cpu, where they are the same).
static void push_grad(model_ctx *ctx, const tensor *h, tensor *dt) {
  if (h->data == dt->data) return;
  int64_t n = tensor_numel(dt);
  float *tmp = arena_floats(ctx->arena, n);
  dev_upload(ctx_dev(ctx), tmp, h->data, (size_t)n * sizeof(float));
  ew_axpy(ctx_dev(ctx), n, 1.0f, tmp, dt->data);
}

// Proposals of one view of image i (detached): jittered GT boxes, or the RPN's.
static int64_t view_proposals(const step_ctx *s, const device *d, const view *v, int size,
                              const rpn_head_acts *rpn,
                              int64_t i, int key_view, int64_t step, int64_t global_image,
                              float **out) {
  const train_opts *o = s->o;
  if (o->jitter) {
    int64_t n = jitter_proposal_count(&o->jit, v->n);
    *out = mallocCheck((size_t)(n > 0 ? n : 1) * 4 * sizeof(float));
    rng_key k = sample_rng_key(o->seed, key_view ? SAMPLE_ROLE_JITTER_KEY : SAMPLE_ROLE_JITTER_REF,
                               step, global_image);
    return jitter_proposals(&o->jit, v->n, v->boxes, (float)size, (float)size, k, *out);
  }
  rpn_proposal_cfg pc = key_view ? rpn_proposal_cfg_train() : rpn_proposal_cfg_test();
  *out = mallocCheck((size_t)pc.max_per_img * 4 * sizeof(float));
  float *scores = mallocCheck((size_t)pc.max_per_img * sizeof(float));
  // On a GPU the top-k, decode and NMS run there; only the proposals come back.
  int64_t n = rpn_proposals_dev(d, &s->anchors, &s->coder, &pc, rpn->cls, rpn->reg, i,
                                (float)v->content_h, (float)v->content_w, *out, scores, NULL);
  free(scores);
  return n;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

// The RPN classification (reg 0) or regression (reg 1) loss of the n images when the maps live
// on a device: the values the sampled anchors read are gathered there per level and downloaded
// (a few thousand floats instead of the maps), the loss runs on the host exactly as
// rpn_loss_cls / rpn_loss_bbox do, and the gradients go back as a scatter-add into dmaps.
// Adds each image's loss to *stat in image order, as the map path does.
static void rpn_losses_sparse(model_ctx *ctx, const rpn_anchor_set *as, const det_targets *rt,
                              int n, int L, const tensor *maps, tensor *dmaps, int reg,
                              const reg_loss_cfg *rc, double af, float w, double *stat) {
  const device *dv = ctx_dev(ctx);
  arena *ha = ctx_host(ctx);
  int64_t *start = arena_alloc_bytes(ha, (size_t)(n + 1) * sizeof(int64_t));
  start[0] = 0;
  for (int i = 0; i < n; i++)
    start[i + 1] = start[i] + (reg ? 4 * rt[i].num_pos : rt[i].num_pos + rt[i].num_neg);
  int64_t K = start[n];
  int *lv = arena_alloc_bytes(ha, (size_t)(K + 1) * sizeof(int));
  int64_t *off = arena_alloc_bytes(ha, (size_t)(K + 1) * sizeof(int64_t));
  for (int i = 0; i < n; i++) {
    if (reg) rpn_loss_bbox_index(as, &rt[i], maps, i, lv + start[i], off + start[i]);
    else rpn_loss_cls_index(as, &rt[i], maps, i, lv + start[i], off + start[i]);
  }
  // Per level: the offsets in sample order (distinct: one image's samples are distinct anchors,
  // and images have disjoint offsets), gathered into x.
  float *x = arena_floats(ha, K + 1), *g = arena_floats(ha, K + 1);
  int64_t *idx = arena_alloc_bytes(ha, (size_t)(K + 1) * sizeof(int64_t));
  float *vals = arena_floats(ha, K + 1);
  for (int l = 0; l < L; l++) {
    int64_t c = 0;
    for (int64_t k = 0; k < K; k++)
      if (lv[k] == l) idx[c++] = off[k];
    if (!c) continue;
    int64_t *sorted = arena_alloc_bytes(ha, (size_t)c * sizeof(int64_t));
    memcpy(sorted, idx, (size_t)c * sizeof(int64_t));
    qsort(sorted, (size_t)c, sizeof(int64_t), cmp_i64);
    for (int64_t k = 1; k < c; k++) masa_assert(sorted[k] != sorted[k - 1]);
    int64_t *di = arena_alloc_bytes(ctx->arena, (size_t)c * sizeof(int64_t));
    float *dx = arena_floats(ctx->arena, c);
    dev_upload(dv, di, idx, (size_t)c * sizeof(int64_t));
    ew_gather(dv, c, maps[l].data, di, dx);
    dev_download(dv, vals, dx, (size_t)c * sizeof(float));
    for (int64_t k = 0, q = 0; k < K; k++)
      if (lv[k] == l) x[k] = vals[q++];
  }
  for (int i = 0; i < n; i++)
    *stat += reg ? rpn_loss_bbox_values(&rt[i], x + start[i], rc, af, w, g + start[i])
                 : rpn_loss_cls_values(&rt[i], x + start[i], af, w, g + start[i]);
  for (int l = 0; l < L; l++) {
    int64_t c = 0;
    for (int64_t k = 0; k < K; k++)
      if (lv[k] == l) idx[c] = off[k], vals[c++] = g[k];
    if (!c) continue;
    int64_t *di = arena_alloc_bytes(ctx->arena, (size_t)c * sizeof(int64_t));
    float *dg = arena_floats(ctx->arena, c);
    dev_upload(dv, di, idx, (size_t)c * sizeof(int64_t));
    dev_upload(dv, dg, vals, (size_t)c * sizeof(float));
    ew_scatter_add(dv, c, dg, di, dmaps[l].data);
  }
}

// One training step's forward and backward on this rank's batch; gradients accumulate into the
// parameter table. stats[T_*] receives the summed loss terms and counts.
// Object-prior distillation on the key view (masa-spec 3, 4.5): RPN targets and losses on the
// anchors, box-head targets on the key proposals and their losses; gradients into df (the key
// view's feature gradients). SAM boxes are class-agnostic GTs (label 0).
static void distill_step(const step_ctx *s, model_ctx *ctx, const loader_batch *b, int64_t step,
                         int rank, int world, const masa_feat_acts *fa, const rpn_head_acts *ra,
                         float *const *props, const int64_t *nprops, tensor *df, double *stats) {
  const masa_model *m = s->m;
  const train_opts *o = s->o;
  int n = b->n, L = m->cfg.num_outs;
  int64_t hs[RPN_MAX_LEVELS], ws[RPN_MAX_LEVELS];
  for (int l = 0; l < L; l++) hs[l] = fa->feats[l].shape[2], ws[l] = fa->feats[l].shape[3];
  rpn_anchor_set as;
  rpn_anchor_set_make(&s->anchors, L, hs, ws, &as);
  det_train_cfg rpn_cfg = det_train_cfg_rpn(), rcnn_cfg = det_train_cfg_rcnn();
  det_targets *rt = callocCheck((size_t)n, sizeof *rt), *ct = callocCheck((size_t)n, sizeof *ct);
  int64_t K = 0;
  for (int i = 0; i < n; i++) {
    const view *v = &b->pairs[i].v[0];
    int64_t g = (int64_t)i * world + rank;
    rpn_targets_image(&rpn_cfg, &as, v->n, v->boxes, sample_rng_key(o->seed, SAMPLE_ROLE_RPN, step, g), &rt[i]);
    rcnn_targets_image(&rcnn_cfg, 1, nprops[i], props[i], v->n, v->boxes, NULL,
                       sample_rng_key(o->seed, SAMPLE_ROLE_RCNN, step, g), &ct[i]);
    K += ct[i].num_pos + ct[i].num_neg;
  }
  stats[T_DET_ROIS] += (double)K;
  arena *ha = ctx_host(ctx);
  tensor *dcls = arena_alloc_bytes(ha, (size_t)L * sizeof(tensor));
  tensor *dreg = arena_alloc_bytes(ha, (size_t)L * sizeof(tensor));
  for (int l = 0; l < L; l++)
    dcls[l] = ctx_zeros_like(ctx, &ra->cls[l]), dreg[l] = ctx_zeros_like(ctx, &ra->reg[l]);
  // Average factors are summed over ranks (and the loss scaled by the world size, since the
  // gradients are averaged), so a data-parallel step equals one process with the whole batch.
  // (mmdet normalises by each GPU's own factor; with equal per-GPU batches the two agree in
  // expectation.)
  double af[3] = {rpn_avg_factor(n, rt), rcnn_cls_avg_factor(n, ct), rcnn_bbox_avg_factor(n, ct)};
  if (world > 1 && ctx->bn_sync) ctx->bn_sync(af, 3, ctx->bn_sync_ctx);
  float wsc = (float)world;
  if (dev_is_host(ctx_dev(ctx))) {
    for (int i = 0; i < n; i++) {
      stats[T_LOSS_RPN_CLS] += rpn_loss_cls(&as, &rt[i], ra->cls, i, af[0], o->w_rpn_cls * wsc, dcls);
      stats[T_LOSS_RPN_BBOX] += rpn_loss_bbox(&as, &rt[i], ra->reg, i, &o->rpn_reg, af[0], o->w_rpn_bbox * wsc, dreg);
    }
  } else {  // the same losses, with only the sampled map values crossing to the host and back
    rpn_losses_sparse(ctx, &as, rt, n, L, ra->cls, dcls, 0, NULL, af[0], o->w_rpn_cls * wsc,
                      &stats[T_LOSS_RPN_CLS]);
    rpn_losses_sparse(ctx, &as, rt, n, L, ra->reg, dreg, 1, &o->rpn_reg, af[0],
                      o->w_rpn_bbox * wsc, &stats[T_LOSS_RPN_BBOX]);
  }
  rpn_head_backward(&m->rpn, ctx, ra, dcls, dreg, df);
  if (m->cfg.with_bbox_head) {
    float *rois = mallocCheck((size_t)(K + 1) * 5 * sizeof(float));
    for (int i = 0, r = 0; i < n; i++)
      for (int64_t j = 0; j < ct[i].num_pos + ct[i].num_neg; j++, r++) {
        rois[5 * r] = (float)i;
        memcpy(rois + 5 * r + 1, ct[i].boxes + 4 * j, 4 * sizeof(float));
      }
    bbox_head_acts *ba = arena_alloc_bytes(ha, sizeof *ba);
    bbox_head_forward(&m->bbox, ctx, fa->feats, K, ctx_upload(ctx, rois, K * 5), ba);
    tensor dc = ctx_zeros_like(ctx, &ba->cls), dr = ctx_zeros_like(ctx, &ba->reg);
    tensor hc = ctx_host_view(ctx, &ba->cls), hr = ctx_host_view(ctx, &ba->reg);
    tensor gc = host_grad(ctx, &dc), gr = host_grad(ctx, &dr);
    reg_loss_cfg rc = reg_loss_rcnn();
    int64_t C1 = ba->cls.shape[1];
    for (int i = 0, r = 0; i < n; i++) {
      stats[T_LOSS_CLS] += rcnn_loss_cls(&ct[i], 1, hc.data + r * C1, af[1], o->w_cls * wsc, gc.data + r * C1);
      stats[T_LOSS_BBOX] += rcnn_loss_bbox(&ct[i], hr.data + r * 4, &rc, af[2], o->w_bbox * wsc, gr.data + r * 4);
      r += (int)(ct[i].num_pos + ct[i].num_neg);
    }
    push_grad(ctx, &gc, &dc);
    push_grad(ctx, &gr, &dr);
    bbox_head_backward(&m->bbox, ctx, ba, &dc, &dr, df);
    free(rois);
  }
  for (int i = 0; i < n; i++) det_targets_free(&rt[i]), det_targets_free(&ct[i]);
  free(rt), free(ct);
  rpn_anchor_set_free(&as);
}

// Image i of rank r (of w) is image i * w + r of the global batch: the loader interleaves ranks
// over the positions (data/loader.c), so every random key below matches a 1-rank run with the
// whole batch.
// dimg: the batch's two view tensors already on ctx's device (NULL: uploaded here).
static void train_step(const step_ctx *s, model_ctx *ctx, const loader_batch *b,
                       float *const *dimg, int64_t step, int rank, int world, double *stats) {
  const masa_model *m = s->m;
  const train_opts *o = s->o;
  int n = b->n, S = b->size, L = m->cfg.num_outs;
  int64_t E = m->cfg.track.embed_channels;
  tensor img[2];
  arena *ha = ctx_host(ctx);
  masa_feat_acts *fa = arena_alloc_bytes(ha, 2 * sizeof *fa);
  rpn_head_acts *ra = arena_alloc_bytes(ha, 2 * sizeof *ra);
  for (int k = 0; k < 2; k++) {
    int64_t shape[4] = {n, 3, S, S};
    img[k] = tensor_view(dimg ? dimg[k] : ctx_upload(ctx, b->img[k], (int64_t)n * 3 * S * S), 4,
                         shape);
    masa_features_forward(m, ctx, &img[k], &fa[k]);
    int distill_here = o->distill && k == 0;
    if (!o->jitter || distill_here) {
      int train = ctx->training;
      ctx->training = distill_here;  // the reference view's RPN only proposes
      rpn_head_forward(&m->rpn, ctx, L, fa[k].feats, &ra[k]);
      ctx->training = train;
    }
  }
  // Samples and targets per pair.
  track_targets *tt = callocCheck((size_t)n, sizeof *tt);
  float **key_props = callocCheck((size_t)n, sizeof *key_props);
  int64_t *key_np = callocCheck((size_t)n, sizeof *key_np);
  int64_t nkey = 0, nref = 0;
  for (int i = 0; i < n; i++) {
    const view_pair *p = &b->pairs[i];
    float *props[2];
    int64_t np[2];
    for (int k = 0; k < 2; k++)
      np[k] = view_proposals(s, ctx_dev(ctx), &p->v[k], S, &ra[k], i, k == 0, step,
                             (int64_t)i * world + rank, &props[k]);
    track_view kv = {np[0], props[0], p->v[0].n, p->v[0].boxes, p->v[0].ids};
    track_view rv = {np[1], props[1], p->v[1].n, p->v[1].boxes, p->v[1].ids};
    int64_t g = (int64_t)i * world + rank;
    track_targets_pair(&s->samp, &kv, &rv, sample_rng_key(o->seed, SAMPLE_ROLE_TRACK_KEY, step, g),
                       sample_rng_key(o->seed, SAMPLE_ROLE_TRACK_REF, step, g), &tt[i]);
    key_props[i] = props[0];
    key_np[i] = np[0];
    free(props[1]);
    nkey += tt[i].num_key;
    nref += tt[i].num_ref;
  }
  float *rois[2] = {mallocCheck((size_t)(nkey + 1) * 5 * sizeof(float)),
                    mallocCheck((size_t)(nref + 1) * 5 * sizeof(float))};
  for (int i = 0, ok = 0, or = 0; i < n; i++) {
    for (int64_t j = 0; j < tt[i].num_key; j++, ok++) {
      rois[0][5 * ok] = (float)i;
      memcpy(rois[0] + 5 * ok + 1, tt[i].key_rois + 4 * j, 4 * sizeof(float));
    }
    for (int64_t j = 0; j < tt[i].num_ref; j++, or++) {
      rois[1][5 * or] = (float)i;
      memcpy(rois[1] + 5 * or + 1, tt[i].ref_rois + 4 * j, 4 * sizeof(float));
    }
  }
  track_head_acts *ta = arena_alloc_bytes(ha, 2 * sizeof *ta);
  track_head_forward(&m->track, ctx, fa[0].feats, nkey, ctx_upload(ctx, rois[0], nkey * 5), &ta[0]);
  track_head_forward(&m->track, ctx, fa[1].feats, nref, ctx_upload(ctx, rois[1], nref * 5), &ta[1]);
  tensor demb[2] = {ctx_zeros_like(ctx, &ta[0].embed), ctx_zeros_like(ctx, &ta[1].embed)};

  // Losses per image, averaged over the images of the batch (mmdet: sum / number of images).
  float wt = o->w_track / (float)n, wa = o->w_aux / (float)n;
  for (int i = 0, ok = 0, or = 0; i < n; i++) {
    const track_targets *t = &tt[i];
    // Embeddings and their gradients stay on the device; the targets are host memory.
    const float *ke = ta[0].embed.data + ok * E, *re = ta[1].embed.data + or * E;
    float *dk = demb[0].data + ok * E, *dr = demb[1].data + or * E;
    const device *dv = ctx_dev(ctx);
    stats[T_LOSS_TRACK] += unbiased_contrast_loss_dev(dv, t->num_key, t->num_ref, E, ke, re, t->target, wt, dk, dr);
    margin_l2_cfg mc = o->margin;
    mc.seed = o->seed;
    mc.stream = ((uint64_t)step << 20) | (uint64_t)((int64_t)i * world + rank);
    stats[T_LOSS_AUX] += margin_l2_loss_dev(dv, t->num_key, t->num_ref, E, ke, re, t->target, &mc, wa, dk, dr);
    ok += (int)t->num_key;
    or += (int)t->num_ref;
  }
  stats[T_KEY_ROIS] += (double)nkey;
  stats[T_REF_ROIS] += (double)nref;
  stats[T_IMAGES] += n;
  // Backward: every head into each view's feature gradients, then adapter (and backbone).
  tensor *df[2];
  for (int k = 0; k < 2; k++) {
    df[k] = arena_alloc_bytes(ha, (size_t)L * sizeof(tensor));
    for (int l = 0; l < L; l++) df[k][l] = ctx_zeros_like(ctx, &fa[k].feats[l]);
    track_head_backward(&m->track, ctx, &ta[k], &demb[k], df[k]);
  }
  if (o->distill) distill_step(s, ctx, b, step, rank, world, &fa[0], &ra[0], key_props, key_np, df[0], stats);
  if (s->heads_done) s->heads_done(s->hook);
  for (int k = 0; k < 2; k++) masa_features_backward(m, ctx, &fa[k], df[k]);
  for (int i = 0; i < n; i++) {
    track_targets_free(&tt[i]);
    free(key_props[i]);
  }
  free(tt), free(key_props), free(key_np);
  free(rois[0]), free(rois[1]);
}

// mkdir -p.
static int mkdir_p1(const char *dir) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0775) != 0 && errno != EEXIST) return masa_error("%s: cannot create: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0775) != 0 && errno != EEXIST) return masa_error("%s: cannot create: %s", dir, strerror(errno));
  return MASA_OK;
}

static void save_state(checkpoint_state *st, int64_t step, int64_t epoch, const loader_cursor *cur,
                       uint64_t seed, char *config_text) {
  memset(st, 0, sizeof *st);
  st->step = step;
  st->epoch = epoch;
  ckpt_kv_set(&st->rng, "seed", (int64_t)seed);
  ckpt_kv_set(&st->loader, "epoch", cur->epoch);
  ckpt_kv_set(&st->loader, "batch", cur->batch);
  ckpt_kv_set(&st->loader, "skipped", cur->skipped);
  st->config_text = config_text;
}

// Batch images on a device, one step ahead: the loader's ring is page-locked (CUDA) and while
// step k runs, batch k+1 (if the loader has it ready) is already copying on a side stream into
// the other of two device buffers; step k+1 then only waits for that copy. Without a ready
// batch the upload is synchronous. On the guard device the same code runs with plain copies.
typedef struct {
  device dev;
  dev_copier *cp;
  float *buf[2][2];           // [buffer][view] device images
  size_t bytes;               // per view
  const loader_batch *ahead;  // the batch whose images are in flight to buf[cur ^ 1]
  int cur;
} batch_uploader;

static void pin_cb(void *ctx, void *p, size_t bytes) { dev_host_register(ctx, p, bytes); }
static void unpin_cb(void *ctx, void *p, size_t bytes) {
  (void)bytes;
  dev_host_unregister(ctx, p);
}

static void batch_uploader_open(batch_uploader *u, const device *d, loader *ld,
                                const loader_opts *lo) {
  memset(u, 0, sizeof *u);
  u->dev = *d;
  u->bytes = (size_t)lo->batch_size * 3 * (size_t)lo->views.size * (size_t)lo->views.size *
             sizeof(float);
  for (int k = 0; k < 2; k++)
    for (int v = 0; v < 2; v++) u->buf[k][v] = dev_alloc(d, u->bytes);
  u->cp = dev_copier_create(d);
  loader_for_each_image_buffer(ld, pin_cb, &u->dev);
}

// The device images of b (which loader_next just returned), and the next batch queued.
static float *const *batch_on_device(batch_uploader *u, loader *ld, const loader_batch *b) {
  u->cur ^= 1;
  float *const *dst = u->buf[u->cur];
  if (u->ahead == b) {
    dev_copier_fence(u->cp);
  } else {
    for (int v = 0; v < 2; v++) dev_upload(&u->dev, dst[v], b->img[v], u->bytes);
  }
  // The copy into the other buffer waits for the work already queued (the previous step).
  u->ahead = loader_peek(ld);
  if (u->ahead)
    for (int v = 0; v < 2; v++)
      dev_copier_upload(u->cp, u->buf[u->cur ^ 1][v], u->ahead->img[v], u->bytes);
  return dst;
}

static void batch_uploader_close(batch_uploader *u, loader *ld) {
  dev_copier_destroy(u->cp);
  loader_for_each_image_buffer(ld, unpin_cb, &u->dev);
  for (int k = 0; k < 2; k++)
    for (int v = 0; v < 2; v++) dev_free(&u->dev, u->buf[k][v]);
}

// Overlapped gradient all-reduce (NCCL, several GPUs): the heads' gradients (a contiguous suffix
// of the trainable prefix: rpn_head, roi_head, track_head) are final before the adapter and
// backbone backward starts, so their sum runs on NCCL's stream beside that backward; the rest
// follows at the end of the step.
typedef struct {
  const device *dev;
  param_table *t;
  dist_ctx *dist;
  size_t head_off;  // first element of the heads' suffix (0: no overlap)
  int started;
} grad_sync;

static size_t heads_suffix_offset(const param_table *t) {
  static const char *heads[] = {"rpn_head.", "roi_head.", "track_head."};
  size_t off = t->trainable_total;
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (!e->trainable) continue;
    int head = 0;
    for (int h = 0; h < 3; h++) head |= !strncmp(e->name, heads[h], strlen(heads[h]));
    if (head && e->offset < off) off = e->offset;
  }
  for (int i = 0; i < t->count; i++) {  // everything from off on must be a head
    const param_entry *e = &t->entries[i];
    if (!e->trainable || e->offset < off) continue;
    int head = 0;
    for (int h = 0; h < 3; h++) head |= !strncmp(e->name, heads[h], strlen(heads[h]));
    if (!head) return 0;
  }
  return off < t->trainable_total ? off : 0;
}

static void heads_done_cb(void *p) {
  grad_sync *g = p;
  g->started = g->head_off > 0 &&
               dist_device_allreduce_start(g->dev, g->t->grads + g->head_off,
                                           (int64_t)(g->t->trainable_total - g->head_off),
                                           g->dist) == MASA_OK;
}

// "cpu" (default), "guard", "cuda" or "cuda:N". Plain "cuda" with several processes on a node
// takes GPU local_rank (one process per GPU).
static int train_pick_device(const char *name, const dist_ctx *dist, device *dev) {
  if (device_parse(name ? name : "cpu", dev) != MASA_OK) return MASA_ERR;
  if (dev->kind == DEV_CUDA && name && !strchr(name, ':') && dist->world > 1) {
    char buf[32];
    snprintf(buf, sizeof buf, "cuda:%d", dist->local_rank);
    if (device_parse(buf, dev) != MASA_OK)
      return masa_error("--device cuda: rank %d (local rank %d) has no GPU of its own: %s",
                        dist->rank, dist->local_rank, masa_errmsg());
  }
  device_activate(dev);
  return MASA_OK;
}

// Averages the trainable gradients over ranks. On the cpu through MPI; on a GPU through NCCL when
// dist_nccl_init set it up, else staged through host memory and MPI.
static void grads_allreduce_mean(const device *dev, param_table *t, dist_ctx *dist) {
  int64_t n = (int64_t)t->trainable_total;
  if (dev_is_host(dev)) {
    dist_allreduce_sum_f32(t->grads, n, dist);
    float inv = 1.0f / (float)dist->world;
    for (int64_t i = 0; i < n; i++) t->grads[i] *= inv;
    return;
  }
  if (dist_device_allreduce_sum_f32(dev, t->grads, n, dist) != MASA_OK) {
    float *h = mallocCheck((size_t)(n ? n : 1) * sizeof(float));
    dev_download(dev, h, t->grads, (size_t)n * sizeof(float));
    dist_allreduce_sum_f32(h, n, dist);
    dev_upload(dev, t->grads, h, (size_t)n * sizeof(float));
    free(h);
  }
  ew_scale(dev, n, 1.0f / (float)dist->world, t->grads);
}

int train_run(config *cfg, const train_args *a) {
  int rc = 1;
  dist_ctx dist;
  dist_init(&dist, NULL, NULL);
  train_opts o;
  masa_model_cfg mc;
  optim_opts oo;
  loader_opts lo;
  if (a->data && config_set(cfg, "data.path", a->data, "--data") != MASA_OK) goto fail_cfg;
  if (a->run_dir && config_set(cfg, "train.run_dir", a->run_dir, "--run-dir") != MASA_OK) goto fail_cfg;
  if (train_opts_from_config(cfg, &o) || masa_model_cfg_from_config(cfg, &mc) ||
      optim_opts_from_config(cfg, &oo) || loader_opts_from_config(cfg, &lo))
    goto fail_cfg;
  if ((!o.jitter || o.distill) && !mc.with_rpn) {
    masa_error("train.proposals = rpn and train.distill = true need model.rpn = true "
               "(or set train.proposals = jitter and train.distill = false)");
    goto fail_cfg;
  }
  const char *run_dir = config_str(cfg, "train.run_dir");
  if (dist.rank == 0 && mkdir_p1(run_dir) != MASA_OK) goto fail_cfg;
  dist_barrier(&dist);
  lo.rank = dist.rank;
  lo.world = dist.world;

  masa_model m;
  masa_model_build(&m, &mc);
  masa_model_init(&m, o.seed);
  if (a->init) {
    if (checkpoint_load_weights(a->init, &m.params) != MASA_OK) {
      log_error("%s", masa_errmsg());
      masa_model_free(&m);
      goto done;
    }
    log_info("initialised from %s", a->init);
  }
  masa_model_print_summary(&m);
  optim opt;
  optim_init(&opt, &oo, &m.params);

  // Resume before opening the loader: the cursor decides where the data continues.
  loader_cursor start = {0, 0, 0};
  int64_t step = 0;
  char ckdir[1024];
  snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run_dir);
  if (a->resume) {
    checkpoint_state st;
    memset(&st, 0, sizeof st);
    char from[1100];
    int r;
    struct stat sb;
    if (!strcmp(a->resume, "auto") || (stat(a->resume, &sb) == 0 && S_ISDIR(sb.st_mode))) {
      const char *dir = strcmp(a->resume, "auto") ? a->resume : ckdir;
      char sub[1100];
      snprintf(sub, sizeof sub, "%s/checkpoints", dir);
      if (strcmp(a->resume, "auto") && stat(sub, &sb) == 0) dir = sub;
      int64_t *steps = NULL;
      int nck = 0;
      checkpoint_list(dir, &steps, &nck);
      free(steps);
      r = nck ? checkpoint_resume(dir, &m.params, &opt, &st, from, sizeof from) : MASA_ERR;
      if (nck == 0) {
        if (!strcmp(a->resume, "auto")) {
          log_info("no checkpoint in %s: starting fresh", dir);
          r = MASA_OK;
          st.step = -1;
        } else {
          masa_error("%s: no checkpoint to resume from", dir);
        }
      }
    } else {
      r = checkpoint_load(a->resume, &m.params, &opt, &st);
      snprintf(from, sizeof from, "%s", a->resume);
    }
    if (r != MASA_OK) {
      log_error("%s", masa_errmsg());
      optim_free(&opt);
      masa_model_free(&m);
      goto done;
    }
    if (st.step >= 0) {
      step = st.step;
      if (ckpt_kv_get(&st.loader, "epoch", &start.epoch, from) ||
          ckpt_kv_get(&st.loader, "batch", &start.batch, from) ||
          ckpt_kv_get(&st.loader, "skipped", &start.skipped, from)) {
        log_error("%s", masa_errmsg());
        checkpoint_state_free(&st);
        optim_free(&opt);
        masa_model_free(&m);
        goto done;
      }
      log_info("resumed from %s at step %lld (epoch %lld, batch %lld)", from, (long long)step,
               (long long)start.epoch, (long long)start.batch);
      checkpoint_state_free(&st);
    }
  }
  // Everything above ran on the host; now the parameters (and optimizer moments) move to the
  // training device. One process per GPU: plain "cuda" picks the node-local rank's GPU.
  device dev;
  if (train_pick_device(a->device, &dist, &dev) != MASA_OK || device_apply_config(&dev, cfg) != MASA_OK) {
    log_error("%s", masa_errmsg());
    optim_free(&opt);
    masa_model_free(&m);
    goto done;
  }
  param_table_to_device(&m.params, &dev);
  param_table host_params;  // host copy for checkpoints and export (devices other than the cpu)
  int shadow = !dev_is_host(&dev);
  if (shadow) param_table_clone_layout(&host_params, &m.params, &dev_cpu);
  param_table *save_params = shadow ? &host_params : &m.params;
  if (dev.kind != DEV_CPU) log_info("device %s", device_name(&dev));
  loader *ld = loader_open(&lo, &start);
  if (!ld) {
    log_error("%s", masa_errmsg());
    if (shadow) param_table_free(&host_params);
    optim_free(&opt);
    masa_model_free(&m);
    goto done;
  }
  int64_t per_epoch = loader_batches_per_epoch(ld);
  int64_t total = o.max_iters > 0 ? o.max_iters : o.max_epochs * per_epoch;
  lr_schedule sched;
  // With train.max_iters the run is that long: the cosine schedule decays over it.
  int sched_rc = lr_schedule_from_config(cfg, per_epoch, o.max_epochs, &sched);
  if (sched_rc == MASA_OK && o.max_iters > 0) {
    sched.total_iters = total;
    sched_rc = lr_schedule_check(&sched);
  }
  if (sched_rc != MASA_OK) {
    log_error("%s", masa_errmsg());
    loader_close(ld);
    if (shadow) param_table_free(&host_params);
    optim_free(&opt);
    masa_model_free(&m);
    goto done;
  }
  log_info("%s", loader_describe(ld));
  log_info("training %lld iterations (%lld per epoch), %d rank(s) x %d pairs, optimizer %s, seed %llu",
           (long long)total, (long long)per_epoch, dist.world, lo.batch_size, optim_kind_name(oo.kind),
           (unsigned long long)o.seed);
  char *config_text = config_dump(cfg);
  metrics_log *ml = dist.rank == 0 ? metrics_open(run_dir) : NULL;
  if (dist.rank == 0 && !ml) log_warn("%s (metrics not logged)", masa_errmsg());

  step_ctx sc = {&m, &o, anchor_generator_make(mc.num_outs, mc.strides), delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){1, 1, 1, 1}),
                 track_sample_cfg_default(), NULL, NULL};
  arena ar, har;
  arena_init_on(&ar, 0, &dev);
  arena_init(&har, (size_t)1 << 20);
  model_ctx ctx = {&m.params, &ar, 1, dist.world > 1 ? dist_allreduce_sum_f64 : NULL, &dist,
                   shadow ? &har : NULL};
  batch_uploader up;
  if (shadow) batch_uploader_open(&up, &dev, ld, &lo);
  grad_sync gs = {&dev, &m.params, &dist, heads_suffix_offset(&m.params), 0};
  if (dev.kind == DEV_CUDA && dist.world > 1) sc.heads_done = heads_done_cb, sc.hook = &gs;
  progress pg;
  progress_begin(&pg, "train", total, "it");
  double window[T_COUNT] = {0}, t_window = time_now();
  int64_t first = step, pairs_window = 0;
  int failed = 0;
  checkpoint_opts co = {ckdir, (int)o.ckpt_keep, 0};
  while (step < total) {
    if (a->stop_after > 0 && step - first >= a->stop_after) break;
    const loader_batch *b = loader_next(ld);
    if (!b) {
      log_error("%s", masa_errmsg());
      failed = 1;
      break;
    }
    int64_t epoch = b->cursor.epoch;
    double stats[T_COUNT] = {0};
    arena_reset(&ar);
    arena_reset(&har);
    param_table_zero_grads(&m.params);
    float *const *dimg = shadow ? batch_on_device(&up, ld, b) : NULL;
    train_step(&sc, &ctx, b, dimg, step, dist.rank, dist.world, stats);
    // Average gradients and sum the step's numbers over ranks.
    if (dist.world > 1) {
      if (gs.started) {  // the heads' part is under way: the rest, then wait for both
        int64_t n = (int64_t)m.params.trainable_total;
        masa_assert(dist_device_allreduce_start(&dev, m.params.grads, (int64_t)gs.head_off, &dist) == MASA_OK);
        dist_device_allreduce_wait(&dev);
        ew_scale(&dev, n, 1.0f / (float)dist.world, m.params.grads);
        gs.started = 0;
      } else {
        grads_allreduce_mean(&dev, &m.params, &dist);
      }
      dist_allreduce_sum_f64(stats, T_COUNT, &dist);
    }
    double loss = 0;
    for (int i = 0; i < T_NUM_LOSSES; i++) loss += stats[i] / dist.world;
    double lr = lr_at(&sched, step, epoch);
    optim_step_info info;
    if (optim_step(&opt, &m.params, lr, loss, &info) != MASA_OK) {
      log_error("%s", masa_errmsg());
      failed = 1;
      break;
    }
    step++;
    for (int i = 0; i < T_COUNT; i++) window[i] += stats[i];
    pairs_window += (int64_t)stats[T_IMAGES];
    char extra[160];
    snprintf(extra, sizeof extra, "loss %.4f  track %.4f  aux %.4f  lr %.2e", loss,
             stats[T_LOSS_TRACK] / dist.world, stats[T_LOSS_AUX] / dist.world, lr);
    progress_update(&pg, step, extra);
    int last = step == total || (a->stop_after > 0 && step - first >= a->stop_after);
    if (ml && (step % o.log_interval == 0 || last)) {
      double dt = time_now() - t_window;
      metrics_row r;
      memset(&r, 0, sizeof r);
      r.step = step;
      r.epoch = epoch;
      r.losses[r.n_losses++] = (metric_value){"loss", loss};
      for (int i = 0; i < T_NUM_LOSSES; i++)
        if (i < 2 || o.distill) r.losses[r.n_losses++] = (metric_value){loss_names[i], stats[i] / dist.world};
      r.lr = lr;
      r.grad_norm = info.grad_norm;
      r.pairs_per_s = dt > 0 ? (double)pairs_window / dt : 0;
      r.skipped = info.skipped;
      r.skipped_total = opt.skipped_total;
      r.extra[r.n_extra++] = (metric_value){"key_rois", stats[T_KEY_ROIS] / (stats[T_IMAGES] + 1e-9)};
      r.extra[r.n_extra++] = (metric_value){"bad_samples", (double)loader_skipped(ld)};
      metrics_append(ml, &r);
      memset(window, 0, sizeof window);
      pairs_window = 0;
      t_window = time_now();
    }
    if (dist.rank == 0 && ((o.ckpt_interval > 0 && step % o.ckpt_interval == 0) || last)) {
      checkpoint_state st;
      loader_cursor cur = loader_position(ld);
      save_state(&st, step, cur.epoch, &cur, o.seed, config_text);
      char path[1200];
      if (shadow) param_table_copy_roles(&host_params, &m.params);
      if (checkpoint_save(&co, save_params, &opt, &st, path, sizeof path) != MASA_OK) {
        log_error("%s", masa_errmsg());
        failed = 1;
        break;
      }
      log_debug("checkpoint %s", path);
    }
  }
  progress_end(&pg, step);
  if (!failed && dist.rank == 0) {
    char wpath[1100];
    snprintf(wpath, sizeof wpath, "%s/weights.h5", run_dir);
    if (shadow) param_table_copy_roles(&host_params, &m.params);
    if (checkpoint_export_weights(wpath, save_params) != MASA_OK) {
      log_error("%s", masa_errmsg());
      failed = 1;
    } else {
      log_info("weights: %s", wpath);
    }
    if (ml) {
      metrics_close(ml);
      ml = NULL;
      plot_opts po;
      plot_opts_default(&po);
      if (plot_run(run_dir, NULL, &po, NULL, NULL) == MASA_OK)
        log_info("loss curves: %s/loss.png", run_dir);
      else
        log_warn("loss plot: %s", masa_errmsg());
    }
    log_info("bad samples skipped: %lld; non-finite steps skipped: %lld",
             (long long)loader_skipped(ld), (long long)opt.skipped_total);
  }
  if (ml) metrics_close(ml);
  free(config_text);
  arena_free(&ar);
  arena_free(&har);
  if (shadow) {
    batch_uploader_close(&up, ld);
    param_table_free(&host_params);
  }
  loader_close(ld);
  optim_free(&opt);
  masa_model_free(&m);
  rc = failed;
  goto done;
fail_cfg:
  log_error("%s", masa_errmsg());
done:
  dist_finalize(&dist);
  return rc;
}

struct train_stepper {
  train_opts o;
  step_ctx sc;
};

train_stepper *train_stepper_open(const config *cfg, const masa_model *m) {
  train_stepper *s = callocCheck(1, sizeof *s);
  if (train_opts_from_config(cfg, &s->o) != MASA_OK) {
    free(s);
    return NULL;
  }
  if ((!s->o.jitter || s->o.distill) && !m->cfg.with_rpn) {
    free(s);
    masa_error("train.proposals = rpn and train.distill = true need model.rpn = true");
    return NULL;
  }
  step_ctx sc = {m, &s->o, anchor_generator_make(m->cfg.num_outs, m->cfg.strides),
                 delta_xywh_coder_make((float[]){0, 0, 0, 0}, (float[]){1, 1, 1, 1}),
                 track_sample_cfg_default(), NULL, NULL};
  s->sc = sc;
  return s;
}

void train_stepper_run(train_stepper *s, model_ctx *ctx, const loader_batch *b, int64_t step,
                       int rank, int world, train_step_stats *out) {
  double stats[T_COUNT] = {0};
  arena_reset(ctx->arena);
  if (ctx->host) arena_reset(ctx->host);
  param_table_zero_grads(ctx->params);
  train_step(&s->sc, ctx, b, NULL, step, rank, world, stats);
  memset(out, 0, sizeof *out);
  for (int i = 0; i < T_NUM_LOSSES; i++) out->loss += stats[i];
  out->key_rois = stats[T_KEY_ROIS], out->ref_rois = stats[T_REF_ROIS];
  out->det_rois = stats[T_DET_ROIS], out->images = stats[T_IMAGES];
}

void train_stepper_close(train_stepper *s) { free(s); }
