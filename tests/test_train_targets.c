// Training targets between proposals and losses (train/assign.c, sample.c, det_targets.c,
// det_losses.c, track_targets.c):
//  - the assigner against oracle_train_targets.py's transcription of mmdet's MaxIoUAssigner and
//    bbox_overlaps (exact gt_inds; edge cases: no GT, one GT, a GT with IoU 0 everywhere, ties,
//    no boxes, degenerate boxes, 20k anchors);
//  - RPN and RoI-head targets and losses on the oracle's own sample sets (values and gradients,
//    mmdet's avg_factor rules), plus finite differences;
//  - the samplers by properties (counts, fractions, instance balance, GTs as candidates,
//    determinism per key, different draws per seed/stream, uniformity of the subset draw);
//  - track-head targets of image pairs (instances missing from the reference view, no GTs,
//    thousands of proposals, the no-RPN jittered-proposal mode).
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "harness.h"
#include "model/rpn.h"
#include "train/assign.h"
#include "train/det_losses.h"
#include "train/det_targets.h"
#include "train/sample.h"
#include "train/track_targets.h"

static uint64_t g_seed;

// ------------------------------------------------------------------ oracle helpers
static void fmt_name(char *buf, size_t n, const char *fmt, va_list ap) { vsnprintf(buf, n, fmt, ap); }

static float *rd_f32(h5file *f, int64_t *numel, int64_t *shape, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  fmt_name(name, sizeof name, fmt, ap);
  va_end(ap);
  int nd;
  int64_t sh[TENSOR_MAX_DIMS], n;
  float *p = oracle_read_any(f, name, &n, &nd, sh);
  if (numel) *numel = n;
  if (shape)
    for (int i = 0; i < nd; i++) shape[i] = sh[i];
  return p;
}

static int64_t *rd_i64(h5file *f, int64_t *numel, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  fmt_name(name, sizeof name, fmt, ap);
  va_end(ap);
  int64_t *p, sh[TENSOR_MAX_DIMS];
  int nd;
  if (h5_read_i64(f, name, &p, &nd, sh) != MASA_OK) {
    fprintf(stderr, "train_targets: %s\n", masa_errmsg());
    exit(1);
  }
  if (numel) *numel = shape_numel(nd, sh);
  return p;
}

static int check_i64_eq(const char *what, const int64_t *got, const int64_t *ref, int64_t n) {
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++)
    if (got[i] != ref[i]) {
      if (first < 0) first = i;
      bad++;
    }
  if (bad)
    printf("  %s: %lld of %lld differ, first at %lld: got %lld, want %lld\n", what, (long long)bad,
           (long long)n, (long long)first, (long long)got[first], (long long)ref[first]);
  return check_true(what, bad == 0);
}

static int strictly_ascending(const int64_t *a, int64_t n) {
  for (int64_t i = 1; i < n; i++)
    if (a[i] <= a[i - 1]) return 0;
  return 1;
}

// ------------------------------------------------------------------ assigner vs oracle
static void test_assign(h5file *f) {
  const char *cases[] = {"random", "no_gt", "one_gt", "far_gt", "ties", "no_boxes", "degenerate", "anchors"};
  const char *cfg_names[] = {"rpn", "rcnn", "track"};
  max_iou_assigner_cfg cfgs[3] = {max_iou_assigner_rpn(), max_iou_assigner_rcnn(), max_iou_assigner_track()};
  char what[160];
  for (int c = 0; c < 8; c++) {
    int64_t nb4, ng4;
    float *boxes = rd_f32(f, &nb4, NULL, "assign/%s/boxes", cases[c]);
    float *gts = rd_f32(f, &ng4, NULL, "assign/%s/gts", cases[c]);
    int64_t n = nb4 / 4, g = ng4 / 4;
    char iou_name[128];
    snprintf(iou_name, sizeof iou_name, "assign/%s/iou", cases[c]);
    if (h5_has(f, iou_name)) {
      float *iou_ref = rd_f32(f, NULL, NULL, "%s", iou_name);
      float *iou = malloc((size_t)(g * n) * sizeof(float));
      bbox_overlaps(g, gts, n, boxes, iou);
      snprintf(what, sizeof what, "assign %s: IoU matrix (%lld x %lld)", cases[c], (long long)g, (long long)n);
      // Same float32 expression in the same order as mmdet's bbox_overlaps: bitwise expected.
      check_close(what, iou, iou_ref, g * n, 0.0, 0.0, "same float32 operations as torch");
      free(iou), free(iou_ref);
    }
    for (int k = 0; k < 3; k++) {
      int64_t *gi_ref = rd_i64(f, NULL, "assign/%s/%s/gt_inds", cases[c], cfg_names[k]);
      float *mo_ref = rd_f32(f, NULL, NULL, "assign/%s/%s/max_overlaps", cases[c], cfg_names[k]);
      assign_result ar;
      max_iou_assign(&cfgs[k], n, boxes, g, gts, &ar);
      snprintf(what, sizeof what, "assign %s/%s: gt_inds (n %lld, g %lld)", cases[c], cfg_names[k],
               (long long)n, (long long)g);
      check_i64_eq(what, ar.gt_inds, gi_ref, n);
      snprintf(what, sizeof what, "assign %s/%s: max_overlaps", cases[c], cfg_names[k]);
      if (n) check_close(what, ar.max_overlaps, mo_ref, n, 0.0, 0.0, "same float32 IoU as torch");
      if (k == 0 && c == 7) {
        // Thread-count independence on the largest case.
        assign_result a1;
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        max_iou_assign(&cfgs[k], n, boxes, g, gts, &a1);
        omp_set_num_threads(nt);
        check_true("assign anchors: identical with 1 thread",
                   memcmp(a1.gt_inds, ar.gt_inds, (size_t)n * sizeof(int64_t)) == 0 &&
                       memcmp(a1.max_overlaps, ar.max_overlaps, (size_t)n * sizeof(float)) == 0);
        assign_result_free(&a1);
      }
      if (k == 1 && c == 0) {
        assign_result_add_gt(&ar);
        int ok = ar.num_boxes == n + g && ar.num_gt_prepended == g;
        for (int64_t i = 0; i < g; i++) ok &= ar.gt_inds[i] == i + 1 && ar.max_overlaps[i] == 1.0f;
        for (int64_t j = 0; j < n; j++) ok &= ar.gt_inds[g + j] == gi_ref[j];
        assign_result_add_gt(&ar);  // idempotent
        ok &= ar.num_boxes == n + g;
        check_true("assign_result_add_gt prepends GT i as box i assigned to itself", ok);
      }
      assign_result_free(&ar);
      free(gi_ref), free(mo_ref);
    }
    free(boxes), free(gts);
  }
  // Flattened anchors of all levels in mmdet's order.
  int64_t ns, nsz;
  int64_t *strides = rd_i64(f, &ns, "anchors_big/strides");
  int64_t *sizes = rd_i64(f, &nsz, "anchors_big/sizes");
  float st[RPN_MAX_LEVELS];
  int64_t hh[RPN_MAX_LEVELS], ww[RPN_MAX_LEVELS];
  for (int l = 0; l < ns; l++) st[l] = (float)strides[l], hh[l] = sizes[2 * l], ww[l] = sizes[2 * l + 1];
  anchor_generator ag = anchor_generator_make((int)ns, st);
  rpn_anchor_set as;
  rpn_anchor_set_make(&ag, (int)ns, hh, ww, &as);
  int64_t na4;
  float *aref = rd_f32(f, &na4, NULL, "anchors_big/anchors");
  check_true("anchor set: total count", as.offset[ns] * 4 == na4);
  check_close("anchor set: flattened anchors (20460)", as.anchors, aref, na4, 1e-4, 0.0,
              "float32 anchors, mmdet op order; 1e-4 px covers any reassociation");
  rpn_anchor_set_free(&as);
  free(aref), free(strides), free(sizes);
}

// ------------------------------------------------------------------ RPN targets and losses
typedef struct {
  rpn_anchor_set *as;
  det_targets *t;
  int n_img;
  tensor *maps;
  int which;  // 0 cls, 1 smoothl1, 2 l1
  double avg;
} rpn_fd_ctx;

static double rpn_fd_loss(void *p) {
  rpn_fd_ctx *c = p;
  double s = 0;
  reg_loss_cfg rc = c->which == 1 ? reg_loss_rpn() : (reg_loss_cfg){REG_LOSS_L1, 1.0f};
  for (int b = 0; b < c->n_img; b++)
    s += c->which == 0 ? rpn_loss_cls(c->as, &c->t[b], c->maps, b, c->avg, 1.0f, NULL)
                       : rpn_loss_bbox(c->as, &c->t[b], c->maps, b, &rc, c->avg, 1.0f, NULL);
  return s;
}

static void test_rpn(h5file *f) {
  int64_t ns;
  int64_t *strides = rd_i64(f, &ns, "rpn/strides");
  int64_t *sizes = rd_i64(f, NULL, "rpn/sizes");
  int L = (int)ns, A = 3, n_img = 2;
  float st[RPN_MAX_LEVELS];
  int64_t hh[RPN_MAX_LEVELS], ww[RPN_MAX_LEVELS];
  for (int l = 0; l < L; l++) st[l] = (float)strides[l], hh[l] = sizes[2 * l], ww[l] = sizes[2 * l + 1];
  anchor_generator ag = anchor_generator_make(L, st);
  rpn_anchor_set as;
  rpn_anchor_set_make(&ag, L, hh, ww, &as);
  int64_t na4;
  float *aref = rd_f32(f, &na4, NULL, "rpn/anchors");
  check_close("rpn: anchors", as.anchors, aref, na4, 1e-4, 0.0, "float32 anchors");
  memcpy(as.anchors, aref, (size_t)na4 * sizeof(float));  // decouple from anchor rounding
  free(aref);
  int64_t N = na4 / 4;

  det_train_cfg cfg = det_train_cfg_rpn();
  det_targets t[2];
  float *gts[2];
  int64_t ng[2];
  char what[160];
  for (int b = 0; b < n_img; b++) {
    int64_t g4, npos, nneg;
    gts[b] = rd_f32(f, &g4, NULL, "rpn/img%d/gts", b);
    ng[b] = g4 / 4;
    int64_t *gi = rd_i64(f, NULL, "rpn/img%d/gt_inds", b);
    int64_t *pos = rd_i64(f, &npos, "rpn/img%d/pos_inds", b);
    int64_t *pos_gt = rd_i64(f, NULL, "rpn/img%d/pos_gt", b);
    int64_t *neg = rd_i64(f, &nneg, "rpn/img%d/neg_inds", b);
    float *tref = rd_f32(f, NULL, NULL, "rpn/img%d/targets", b);
    assign_result ar;
    max_iou_assign(&cfg.assigner, N, as.anchors, ng[b], gts[b], &ar);
    snprintf(what, sizeof what, "rpn img%d: assignment (%lld anchors, %lld GTs)", b, (long long)N, (long long)ng[b]);
    check_i64_eq(what, ar.gt_inds, gi, N);
    assign_result_free(&ar);
    det_targets_build(&cfg.coder, 1, as.anchors, gts[b], NULL, npos, pos, pos_gt, nneg, neg, &t[b]);
    snprintf(what, sizeof what, "rpn img%d: regression targets (%lld positives)", b, (long long)npos);
    check_close(what, t[b].targets, tref, 4 * npos, 1e-6, 1e-5, "float32 encode; logf vs torch.log ulps");
    int lab_ok = 1;
    for (int64_t s = 0; s < npos + nneg; s++) lab_ok &= t[b].labels[s] == (s < npos ? 0 : 1);
    snprintf(what, sizeof what, "rpn img%d: labels 0 (object) for positives, 1 (background) for negatives", b);
    check_true(what, lab_ok);

    // The C sampler on the same assignment: counts and membership (RandomSampler 256 / 0.5).
    det_targets ct;
    rpn_targets_image(&cfg, &as, ng[b], gts[b], sample_rng_key(g_seed, SAMPLE_ROLE_RPN, 7, b), &ct);
    int64_t ncand = 0, nnegc = 0;
    for (int64_t j = 0; j < N; j++) ncand += gi[j] > 0, nnegc += gi[j] == 0;
    int64_t ep = ncand < 128 ? ncand : 128, en = nnegc < 256 - ep ? nnegc : 256 - ep;
    int ok = ct.num_pos == ep && ct.num_neg == en;
    for (int64_t s = 0; s < ct.num_pos; s++) ok &= gi[ct.inds[s]] == ct.pos_gt[s] + 1;
    for (int64_t s = 0; s < ct.num_neg; s++) ok &= gi[ct.inds[ct.num_pos + s]] == 0;
    ok &= strictly_ascending(ct.inds, ct.num_pos) && strictly_ascending(ct.inds + ct.num_pos, ct.num_neg);
    ok &= ct.avg_factor == (double)((ep > 1 ? ep : 1) + (en > 1 ? en : 1));
    snprintf(what, sizeof what, "rpn img%d: C sampler gives %lld pos / %lld neg from the right sets, avg_factor %g",
             b, (long long)ct.num_pos, (long long)ct.num_neg, ct.avg_factor);
    check_true(what, ok);
    det_targets_free(&ct);
    free(gi), free(pos), free(pos_gt), free(neg), free(tref);
  }
  float *avg_ref = rd_f32(f, NULL, NULL, "rpn/avg_factor");
  double avg = rpn_avg_factor(n_img, t);
  snprintf(what, sizeof what, "rpn: batch avg_factor = sum of max(pos,1)+max(neg,1) = %g", avg);
  check_true(what, avg == avg_ref[0]);

  tensor cls[RPN_MAX_LEVELS], reg[RPN_MAX_LEVELS], dcls[RPN_MAX_LEVELS], dreg[RPN_MAX_LEVELS];
  float *dcls_ref[RPN_MAX_LEVELS];
  for (int l = 0; l < L; l++) {
    int64_t shc[4] = {n_img, A, hh[l], ww[l]}, shr[4] = {n_img, 4 * A, hh[l], ww[l]};
    cls[l] = tensor_view(rd_f32(f, NULL, NULL, "rpn/cls%d", l), 4, shc);
    reg[l] = tensor_view(rd_f32(f, NULL, NULL, "rpn/reg%d", l), 4, shr);
    dcls[l] = tensor_alloc(4, shc);
    dreg[l] = tensor_alloc(4, shr);
    for (int64_t i = 0; i < tensor_numel(&dcls[l]); i++) dcls[l].data[i] = 0.5f;  // accumulate
    dcls_ref[l] = rd_f32(f, NULL, NULL, "rpn/dcls%d", l);
  }
  float *lref = rd_f32(f, NULL, NULL, "rpn/cls_loss");
  double loss = 0;
  for (int b = 0; b < n_img; b++) loss += rpn_loss_cls(&as, &t[b], cls, b, avg, 1.0f, dcls);
  float lf = (float)loss;
  check_close("rpn: sigmoid BCE loss (2 images)", &lf, lref, 1, 0.0, 1e-6, "double sums vs float64 torch, float32 store");
  for (int l = 0; l < L; l++) {
    int64_t nn = tensor_numel(&dcls[l]);
    for (int64_t i = 0; i < nn; i++) dcls[l].data[i] -= 0.5f;
    snprintf(what, sizeof what, "rpn: d cls level %d (unsampled anchors 0)", l);
    check_close(what, dcls[l].data, dcls_ref[l], nn, 1e-7, 1e-5,
                "the 0.5 pre-fill of the accumulate check costs up to half an ulp of 0.5 (3e-8)");
  }
  // weight scales linearly.
  tensor d2[RPN_MAX_LEVELS];
  for (int l = 0; l < L; l++) d2[l] = tensor_alloc(cls[l].ndim, cls[l].shape);
  double l2 = 0;
  for (int b = 0; b < n_img; b++) l2 += rpn_loss_cls(&as, &t[b], cls, b, avg, 0.5f, d2);
  int lin = fabs(l2 - 0.5 * loss) <= 1e-9 * fabs(loss);
  for (int l = 0; l < L; l++)
    for (int64_t i = 0; i < tensor_numel(&d2[l]); i++) lin &= fabsf(d2[l].data[i] - 0.5f * dcls[l].data[i]) <= 1e-7f;
  check_true("rpn: loss weight scales value and gradient", lin);
  for (int l = 0; l < L; l++) tensor_free(&d2[l]);

  rpn_fd_ctx fc = {&as, t, n_img, cls, 0, avg};
  check_grad_fd("rpn: fd d cls level 0", cls[0].data, tensor_numel(&cls[0]), dcls[0].data, rpn_fd_loss, &fc, 24,
                1e-2f, 1e-6, 2e-3, g_seed, NULL);

  const char *kinds[2] = {"smoothl1", "l1"};
  for (int k = 0; k < 2; k++) {
    reg_loss_cfg rc = k == 0 ? reg_loss_rpn() : (reg_loss_cfg){REG_LOSS_L1, 1.0f};
    for (int l = 0; l < L; l++) memset(dreg[l].data, 0, (size_t)tensor_numel(&dreg[l]) * sizeof(float));
    double lb = 0;
    for (int b = 0; b < n_img; b++) lb += rpn_loss_bbox(&as, &t[b], reg, b, &rc, avg, 1.0f, dreg);
    float lbf = (float)lb;
    float *lbref = rd_f32(f, NULL, NULL, "rpn/%s/loss", kinds[k]);
    snprintf(what, sizeof what, "rpn: %s bbox loss (positives, same avg_factor)", kinds[k]);
    check_close(what, &lbf, lbref, 1, 1e-9, 1e-5, "double sums; targets float32 encode in both");
    for (int l = 0; l < L; l++) {
      float *dref = rd_f32(f, NULL, NULL, "rpn/%s/dreg%d", kinds[k], l);
      snprintf(what, sizeof what, "rpn: %s d reg level %d", kinds[k], l);
      check_close(what, dreg[l].data, dref, tensor_numel(&dreg[l]), 1e-7, 1e-4,
                  "gradient of |p - t| / beta near 0; float32 targets");
      free(dref);
    }
    free(lbref);
  }
  for (int l = 0; l < L; l++) {
    free(cls[l].data), free(reg[l].data), free(dcls_ref[l]);
    tensor_free(&dcls[l]), tensor_free(&dreg[l]);
  }
  check_true("rpn: no-GT image has no positives and 256 negatives", t[1].num_pos == 0 && t[1].num_neg == 256);
  for (int b = 0; b < n_img; b++) det_targets_free(&t[b]), free(gts[b]);
  free(lref), free(avg_ref), free(strides), free(sizes);
  rpn_anchor_set_free(&as);
}

// ------------------------------------------------------------------ RoI head targets and losses
typedef struct {
  det_targets *t;
  int num_classes;
  float *x;
  int which;  // 0 cls, 1 l1, 2 smoothl1
  double avg;
} rcnn_fd_ctx;

static double rcnn_fd_loss(void *p) {
  rcnn_fd_ctx *c = p;
  if (c->which == 0) return rcnn_loss_cls(c->t, c->num_classes, c->x, c->avg, 1.0f, NULL);
  reg_loss_cfg rc = c->which == 1 ? reg_loss_rcnn() : reg_loss_rpn();
  return rcnn_loss_bbox(c->t, c->x, &rc, c->avg, 1.0f, NULL);
}

// Skip coordinates within 3 fd steps of a kink of |d| or of the SmoothL1 switch at beta.
static int reg_kink_skip(void *ctx, int64_t i) {
  rcnn_fd_ctx *c = ctx;
  if (i >= 4 * c->t->num_pos) return 0;
  double d = fabs((double)c->x[i] - c->t->targets[i]);
  return d < 3e-3 || (c->which == 2 && fabs(d - 1.0 / 9.0) < 3e-3);
}

static void test_rcnn(h5file *f, const char *name, int num_classes) {
  char what[200], attr[64];
  snprintf(attr, sizeof attr, "rcnn_%s/avg_factors", name);
  float *avg_ref = rd_f32(f, NULL, NULL, "%s", attr);
  int n_img = 0;
  char key[64];
  for (;;) {
    snprintf(key, sizeof key, "rcnn_%s/img%d/cls", name, n_img);
    if (!h5_has(f, key)) break;
    n_img++;
  }
  det_train_cfg cfg = det_train_cfg_rcnn();
  det_targets t[4];
  float *cls[4], *reg[4];
  masa_assert(n_img <= 4);
  for (int b = 0; b < n_img; b++) {
    int64_t g4, p4, npos, nneg, ngi;
    float *gts = rd_f32(f, &g4, NULL, "rcnn_%s/img%d/gts", name, b);
    int64_t *gl = rd_i64(f, NULL, "rcnn_%s/img%d/gt_labels", name, b);
    float *props = rd_f32(f, &p4, NULL, "rcnn_%s/img%d/proposals", name, b);
    int64_t *gi = rd_i64(f, &ngi, "rcnn_%s/img%d/gt_inds", name, b);
    int64_t *pos = rd_i64(f, &npos, "rcnn_%s/img%d/pos_inds", name, b);
    int64_t *pos_gt = rd_i64(f, NULL, "rcnn_%s/img%d/pos_gt", name, b);
    int64_t *neg = rd_i64(f, &nneg, "rcnn_%s/img%d/neg_inds", name, b);
    float *tref = rd_f32(f, NULL, NULL, "rcnn_%s/img%d/targets", name, b);
    int64_t *lref = rd_i64(f, NULL, "rcnn_%s/img%d/labels", name, b);
    int64_t g = g4 / 4, n = p4 / 4;
    assign_result ar;
    max_iou_assign(&cfg.assigner, n, props, g, gts, &ar);
    assign_result_add_gt(&ar);
    snprintf(what, sizeof what, "rcnn %s img%d: assignment after add_gt (%lld proposals, %lld GTs)", name, b,
             (long long)n, (long long)g);
    if (ar.num_boxes != ngi) check_true(what, 0);
    else check_i64_eq(what, ar.gt_inds, gi, ngi);
    assign_result_free(&ar);
    float *priors = malloc((size_t)(g + n + 1) * 4 * sizeof(float));
    memcpy(priors, gts, (size_t)g * 4 * sizeof(float));
    memcpy(priors + 4 * g, props, (size_t)n * 4 * sizeof(float));
    det_targets_build(&cfg.coder, num_classes, priors, gts, gl, npos, pos, pos_gt, nneg, neg, &t[b]);
    snprintf(what, sizeof what, "rcnn %s img%d: targets, stds 0.1/0.1/0.2/0.2 (%lld pos)", name, b, (long long)npos);
    check_close(what, t[b].targets, tref, 4 * npos, 1e-5, 1e-5, "float32 encode, divided by 0.1/0.2");
    snprintf(what, sizeof what, "rcnn %s img%d: labels (GT label, background = num_classes)", name, b);
    check_i64_eq(what, t[b].labels, lref, npos + nneg);

    // The C sampler (512 / 0.25, GTs prepended) on the same image.
    det_targets ct;
    rcnn_targets_image(&cfg, num_classes, n, props, g, gts, gl, sample_rng_key(g_seed, SAMPLE_ROLE_RCNN, 3, b), &ct);
    int64_t ncand = 0, nnegc = 0;
    for (int64_t j = 0; j < ngi; j++) ncand += gi[j] > 0, nnegc += gi[j] == 0;
    int64_t ep = ncand < 128 ? ncand : 128, en = nnegc < 512 - ep ? nnegc : 512 - ep;
    int ok = ct.num_pos == ep && ct.num_neg == en;
    for (int64_t s = 0; s < ct.num_pos + ct.num_neg; s++) {
      int64_t i = ct.inds[s];
      ok &= memcmp(ct.boxes + 4 * s, priors + 4 * i, 4 * sizeof(float)) == 0;
      ok &= s < ct.num_pos ? (gi[i] == ct.pos_gt[s] + 1 && ct.labels[s] == gl[ct.pos_gt[s]])
                           : (gi[i] == 0 && ct.labels[s] == num_classes);
    }
    if (ncand <= 128) {  // every candidate, so every GT, is sampled
      int64_t gin = 0;
      for (int64_t s = 0; s < ct.num_pos; s++) gin += ct.inds[s] < g;
      ok &= gin == g;
    }
    snprintf(what, sizeof what, "rcnn %s img%d: C sampler %lld pos / %lld neg, boxes = priors, GTs sampled when few",
             name, b, (long long)ct.num_pos, (long long)ct.num_neg);
    check_true(what, ok);
    det_targets_free(&ct);
    cls[b] = rd_f32(f, NULL, NULL, "rcnn_%s/img%d/cls", name, b);
    reg[b] = rd_f32(f, NULL, NULL, "rcnn_%s/img%d/reg", name, b);
    free(gts), free(gl), free(props), free(gi), free(pos), free(pos_gt), free(neg), free(tref), free(lref),
        free(priors);
  }
  double cls_avg = rcnn_cls_avg_factor(n_img, t), bbox_avg = rcnn_bbox_avg_factor(n_img, t);
  snprintf(what, sizeof what, "rcnn %s: avg_factors cls max(k,1) = %g, bbox k = %g", name, cls_avg, bbox_avg);
  check_true(what, cls_avg == avg_ref[0] && bbox_avg == avg_ref[1]);

  const int C = num_classes + 1;
  double lc = 0;
  float *dcls[4];
  for (int b = 0; b < n_img; b++) {
    int64_t k = t[b].num_pos + t[b].num_neg;
    dcls[b] = calloc((size_t)(k * C + 1), sizeof(float));
    lc += rcnn_loss_cls(&t[b], num_classes, cls[b], cls_avg, 1.0f, dcls[b]);
  }
  float lcf = (float)lc, *lcref = rd_f32(f, NULL, NULL, "rcnn_%s/cls_loss", name);
  snprintf(what, sizeof what, "rcnn %s: softmax CE loss", name);
  check_close(what, &lcf, lcref, 1, 0.0, 1e-6, "double sums vs float64 torch");
  for (int b = 0; b < n_img; b++) {
    int64_t k = t[b].num_pos + t[b].num_neg;
    float *dref = rd_f32(f, NULL, NULL, "rcnn_%s/img%d/dcls", name, b);
    snprintf(what, sizeof what, "rcnn %s img%d: d cls", name, b);
    check_close(what, dcls[b], dref, k * C, 1e-8, 1e-5, "float32 store of float64 gradients");
    free(dref);
  }
  if (t[0].num_pos + t[0].num_neg > 0) {
    rcnn_fd_ctx fc = {&t[0], num_classes, cls[0], 0, cls_avg};
    snprintf(what, sizeof what, "rcnn %s: fd d cls img0", name);
    check_grad_fd(what, cls[0], (t[0].num_pos + t[0].num_neg) * C, dcls[0], rcnn_fd_loss, &fc, 24, 1e-2f, 1e-6,
                  2e-3, g_seed + 1, NULL);
  }
  const char *kinds[2] = {"l1", "smoothl1"};
  for (int kk = 0; kk < 2; kk++) {
    reg_loss_cfg rc = kk == 0 ? reg_loss_rcnn() : reg_loss_rpn();
    double lb = 0;
    float *dreg[4];
    for (int b = 0; b < n_img; b++) {
      int64_t k = t[b].num_pos + t[b].num_neg;
      dreg[b] = calloc((size_t)(4 * k + 1), sizeof(float));
      lb += rcnn_loss_bbox(&t[b], reg[b], &rc, bbox_avg, 1.0f, dreg[b]);
    }
    float lbf = (float)lb, *lbref = rd_f32(f, NULL, NULL, "rcnn_%s/%s/loss", name, kinds[kk]);
    snprintf(what, sizeof what, "rcnn %s: %s bbox loss (positives / all sampled)", name, kinds[kk]);
    check_close(what, &lbf, lbref, 1, 1e-9, 1e-5, "double sums; float32 targets in both");
    for (int b = 0; b < n_img; b++) {
      int64_t k = t[b].num_pos + t[b].num_neg;
      float *dref = rd_f32(f, NULL, NULL, "rcnn_%s/img%d/%s/dreg", name, b, kinds[kk]);
      snprintf(what, sizeof what, "rcnn %s img%d: %s d reg (negatives 0)", name, b, kinds[kk]);
      check_close(what, dreg[b], dref, 4 * k, 1e-8, 1e-5, "sign / (d / beta) times 1/avg");
      free(dref);
    }
    if (t[0].num_pos > 0) {
      rcnn_fd_ctx fc = {&t[0], num_classes, reg[0], 1 + kk, bbox_avg};
      snprintf(what, sizeof what, "rcnn %s: fd %s d reg img0 (away from kinks)", name, kinds[kk]);
      check_grad_fd(what, reg[0], 4 * (t[0].num_pos + t[0].num_neg), dreg[0], rcnn_fd_loss, &fc, 24, 1e-3f, 1e-6,
                    2e-3, g_seed + 2, reg_kink_skip);
    }
    for (int b = 0; b < n_img; b++) free(dreg[b]);
    free(lbref);
  }
  for (int b = 0; b < n_img; b++) free(cls[b]), free(reg[b]), free(dcls[b]), det_targets_free(&t[b]);
  free(avg_ref), free(lcref);
}

// ------------------------------------------------------------------ sampler properties
// An assignment made by hand: counts[i] boxes assigned to GT i, then nneg negatives and nign
// ignored boxes, interleaved deterministically so indices of one kind are not contiguous.
static void make_assign(assign_result *ar, int64_t g, const int64_t *counts, int64_t nneg, int64_t nign) {
  int64_t npos = 0;
  for (int64_t i = 0; i < g; i++) npos += counts[i];
  int64_t n = npos + nneg + nign;
  ar->num_gts = g;
  ar->num_boxes = n;
  ar->num_gt_prepended = 0;
  ar->gt_inds = malloc((size_t)(n + 1) * sizeof(int64_t));
  ar->max_overlaps = calloc((size_t)(n + 1), sizeof(float));
  int64_t k = 0;
  for (int64_t i = 0; i < g; i++)
    for (int64_t c = 0; c < counts[i]; c++) ar->gt_inds[k++] = i + 1;
  for (int64_t c = 0; c < nneg; c++) ar->gt_inds[k++] = 0;
  for (int64_t c = 0; c < nign; c++) ar->gt_inds[k++] = -1;
  // Deterministic shuffle (Fisher-Yates on a fixed stream) to interleave the kinds.
  rng_key key = {12345, 99};
  sample_random_choice(ar->gt_inds, n, n, key, 7);
}

static void copy_assign(assign_result *dst, const assign_result *src) {
  *dst = *src;
  dst->gt_inds = malloc((size_t)(src->num_boxes + 1) * sizeof(int64_t));
  dst->max_overlaps = malloc((size_t)(src->num_boxes + 1) * sizeof(float));
  memcpy(dst->gt_inds, src->gt_inds, (size_t)src->num_boxes * sizeof(int64_t));
  memcpy(dst->max_overlaps, src->max_overlaps, (size_t)src->num_boxes * sizeof(float));
}

// Runs the sampler on a copy of ar; checks the invariants every sampler result must meet.
static int run_sampler(const sampler_cfg *cfg, const assign_result *ar, rng_key key, sample_result *sr,
                       assign_result *after) {
  copy_assign(after, ar);
  sample_boxes(cfg, after, key, sr);
  int ok = strictly_ascending(sr->pos_inds, sr->num_pos) && strictly_ascending(sr->neg_inds, sr->num_neg);
  for (int64_t t = 0; t < sr->num_pos; t++)
    ok &= after->gt_inds[sr->pos_inds[t]] > 0 && sr->pos_gt[t] == after->gt_inds[sr->pos_inds[t]] - 1;
  for (int64_t t = 0; t < sr->num_neg; t++) ok &= after->gt_inds[sr->neg_inds[t]] == 0;
  int64_t E = (int64_t)((double)cfg->num * cfg->pos_fraction);
  ok &= sr->num_pos <= E && sr->num_pos + sr->num_neg <= cfg->num;
  if (cfg->neg_pos_ub >= 0) ok &= sr->num_neg <= (int64_t)(cfg->neg_pos_ub * (double)(sr->num_pos > 1 ? sr->num_pos : 1));
  return ok;
}

static void per_gt_counts(const sample_result *sr, int64_t g, int64_t *out) {
  memset(out, 0, (size_t)g * sizeof(int64_t));
  for (int64_t t = 0; t < sr->num_pos; t++) out[sr->pos_gt[t]]++;
}

static void test_sampler(void) {
  char what[200];
  // RandomSampler, RoI-head cfg: 300 positives over 5 GTs (+5 prepended), 4000 negatives,
  // 700 ignored -> 128 positives, 384 negatives.
  {
    int64_t counts[5] = {100, 80, 60, 40, 20};
    assign_result ar, after;
    make_assign(&ar, 5, counts, 4000, 700);
    sampler_cfg cfg = sampler_cfg_rcnn();
    sample_result sr;
    int ok = run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_RCNN, 0, 0), &sr, &after);
    ok &= after.num_boxes == ar.num_boxes + 5 && after.num_gt_prepended == 5;
    snprintf(what, sizeof what, "random sampler: 512 x 0.25 -> %lld pos, %lld neg (want 128, 384)",
             (long long)sr.num_pos, (long long)sr.num_neg);
    check_true(what, ok && sr.num_pos == 128 && sr.num_neg == 384);
    // Determinism and sensitivity to the key.
    sample_result s2, s3, s4;
    assign_result a2, a3, a4;
    run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_RCNN, 0, 0), &s2, &a2);
    run_sampler(&cfg, &ar, sample_rng_key(g_seed + 1, SAMPLE_ROLE_RCNN, 0, 0), &s3, &a3);
    run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_RCNN, 1, 0), &s4, &a4);
    check_true("random sampler: same key -> identical samples",
               s2.num_pos == sr.num_pos && !memcmp(s2.pos_inds, sr.pos_inds, (size_t)sr.num_pos * 8) &&
                   s2.num_neg == sr.num_neg && !memcmp(s2.neg_inds, sr.neg_inds, (size_t)sr.num_neg * 8));
    check_true("random sampler: another seed -> different positives and negatives",
               memcmp(s3.pos_inds, sr.pos_inds, (size_t)sr.num_pos * 8) != 0 &&
                   memcmp(s3.neg_inds, sr.neg_inds, (size_t)sr.num_neg * 8) != 0);
    check_true("random sampler: another step (stream) -> different samples",
               memcmp(s4.pos_inds, sr.pos_inds, (size_t)sr.num_pos * 8) != 0);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    sample_result s5;
    assign_result a5;
    run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_RCNN, 0, 0), &s5, &a5);
    omp_set_num_threads(nt);
    check_true("random sampler: identical with 1 thread", !memcmp(s5.pos_inds, sr.pos_inds, (size_t)sr.num_pos * 8));
    sample_result *all[5] = {&sr, &s2, &s3, &s4, &s5};
    assign_result *alla[6] = {&after, &a2, &a3, &a4, &a5, &ar};
    for (int i = 0; i < 5; i++) sample_result_free(all[i]);
    for (int i = 0; i < 6; i++) assign_result_free(alla[i]);
  }
  // Fewer positives than expected: all are taken, every prepended GT among them; RPN cfg
  // (no GT added) keeps indices as given.
  {
    int64_t counts[3] = {4, 0, 7};
    assign_result ar, after;
    make_assign(&ar, 3, counts, 2000, 100);
    sampler_cfg cfg = sampler_cfg_track();
    sample_result sr;
    int ok = run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_KEY, 0, 0), &sr, &after);
    int64_t gin = 0;
    for (int64_t t = 0; t < sr.num_pos; t++) gin += sr.pos_inds[t] < 3;
    // 14 positives (11 + 3 GTs), negatives capped at 3 * 14 = 42.
    snprintf(what, sizeof what, "track sampler, few positives: %lld pos (all 14, GTs 0..2 included), %lld neg (3x cap 42)",
             (long long)sr.num_pos, (long long)sr.num_neg);
    check_true(what, ok && sr.num_pos == 14 && gin == 3 && sr.num_neg == 42);
    sample_result_free(&sr), assign_result_free(&after);
    sampler_cfg rpn = sampler_cfg_rpn();
    ok = run_sampler(&rpn, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_RPN, 0, 0), &sr, &after);
    check_true("rpn sampler, few positives: 11 pos, 245 neg, no GT prepended",
               ok && sr.num_pos == 11 && sr.num_neg == 245 && sr.num_gt_prepended == 0 && after.num_boxes == ar.num_boxes);
    sample_result_free(&sr), assign_result_free(&after), assign_result_free(&ar);
  }
  // No GT at all: everything negative; track cfg keeps 3 * max(1, 0) = 3 negatives.
  {
    assign_result ar, after;
    make_assign(&ar, 0, NULL, 1000, 0);
    sample_result sr;
    sampler_cfg cfgs[3] = {sampler_cfg_track(), sampler_cfg_rpn(), sampler_cfg_rcnn()};
    int64_t want[3] = {3, 256, 512};
    for (int k = 0; k < 3; k++) {
      int ok = run_sampler(&cfgs[k], &ar, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_REF, 0, 0), &sr, &after);
      snprintf(what, sizeof what, "no GT, cfg %d: 0 pos, %lld neg (want %lld), avg_factor %g", k,
               (long long)sr.num_neg, (long long)want[k], sample_avg_factor(&sr));
      check_true(what, ok && sr.num_pos == 0 && sr.num_neg == want[k] &&
                           sample_avg_factor(&sr) == 1.0 + (double)want[k]);
      sample_result_free(&sr), assign_result_free(&after);
    }
    assign_result_free(&ar);
  }
  // Instance balance, top-up case: one dominant GT (1000 candidates) and five small ones
  // (5 + the GT itself each): G' = 6, q = round(256 / 6) + 1 = 44; per-GT picks 44 + 5 * 6 = 74
  // < 256, so extras are drawn. Every small GT keeps all its 6 boxes (balance), the dominant one
  // gets the rest. As run, extras may repeat picks (count <= 256); as intended exactly 256.
  {
    int64_t counts[6] = {1000, 5, 5, 5, 5, 5};
    assign_result ar, after;
    make_assign(&ar, 6, counts, 3000, 50);
    for (int mode = 0; mode < 2; mode++) {
      sampler_cfg cfg = sampler_cfg_track();
      cfg.ib_topup_excludes_sampled = mode;
      int ok = 1, all_small = 1;
      int64_t min_cnt = 1 << 30, max_cnt = 0, dom_min = 1 << 30;
      for (int trial = 0; trial < 20; trial++) {
        sample_result sr;
        ok &= run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_KEY, trial, 0), &sr, &after);
        int64_t pg[6];
        per_gt_counts(&sr, 6, pg);
        for (int i = 1; i < 6; i++) all_small &= pg[i] == 6;
        dom_min = pg[0] < dom_min ? pg[0] : dom_min;
        min_cnt = sr.num_pos < min_cnt ? sr.num_pos : min_cnt;
        max_cnt = sr.num_pos > max_cnt ? sr.num_pos : max_cnt;
        if (mode == 1) ok &= sr.num_pos == 256;
        sample_result_free(&sr), assign_result_free(&after);
      }
      snprintf(what, sizeof what,
               "instance-balanced top-up (%s): small GTs keep all 6, dominant >= 44 (min %lld), pos count %lld..%lld%s",
               mode ? "intended" : "mmdet as run", (long long)dom_min, (long long)min_cnt, (long long)max_cnt,
               mode ? " == 256" : " <= 256, > 74");
      check_true(what, ok && all_small && dom_min >= 44 && min_cnt > 74 && (mode == 1 || max_cnt < 256));
    }
    assign_result_free(&ar);
  }
  // Trim case: 10 GTs x 59 candidates (+ GT) = 600 > 256; q = round(25.6) + 1 = 27; 270 > 256
  // picks -> random 256 of them: exactly 256, no GT above 27, and none below 27 - 14.
  {
    int64_t counts[10];
    for (int i = 0; i < 10; i++) counts[i] = 59;
    assign_result ar, after;
    make_assign(&ar, 10, counts, 2000, 0);
    sampler_cfg cfg = sampler_cfg_track();
    int ok = 1;
    for (int trial = 0; trial < 10; trial++) {
      sample_result sr;
      ok &= run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_REF, trial, 3), &sr, &after);
      int64_t pg[10];
      per_gt_counts(&sr, 10, pg);
      ok &= sr.num_pos == 256;
      for (int i = 0; i < 10; i++) ok &= pg[i] <= 27 && pg[i] >= 13;
      ok &= sr.num_neg == 256;  // min(512 - 256, 3 * 256)
      sample_result_free(&sr), assign_result_free(&after);
    }
    check_true("instance-balanced trim: 256 positives, each GT <= q = 27, 256 negatives", ok);
    assign_result_free(&ar);
  }
  // Python's round() halves to even: num 20 -> E = 10, G' = 4 -> round(2.5) = 2, q = 3
  // (half-up would give 4). 4 GTs x 5 candidates: picks 12 > 10, trimmed to 10; no GT ever
  // holds more than 3 (with q = 4 most draws would show a 4).
  {
    int64_t counts[4] = {4, 4, 4, 4};  // + the prepended GT = 5 each
    assign_result ar, after;
    make_assign(&ar, 4, counts, 100, 0);
    sampler_cfg cfg = sampler_cfg_track();
    cfg.num = 20;
    int ok = 1;
    for (int trial = 0; trial < 30; trial++) {
      sample_result sr;
      ok &= run_sampler(&cfg, &ar, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_KEY, trial, 9), &sr, &after);
      int64_t pg[4];
      per_gt_counts(&sr, 4, pg);
      ok &= sr.num_pos == 10;
      for (int i = 0; i < 4; i++) ok &= pg[i] <= 3 && pg[i] >= 1;
      sample_result_free(&sr), assign_result_free(&after);
    }
    check_true("instance-balanced quota uses round-half-even: q = round(10/4) + 1 = 3", ok);
    assign_result_free(&ar);
  }
  // Stream keys: distinct per role, step and image; tagged apart from data/sampler.c.
  {
    rng_key a = sample_rng_key(1, SAMPLE_ROLE_TRACK_KEY, 5, 2), b = sample_rng_key(1, SAMPLE_ROLE_TRACK_REF, 5, 2),
            c = sample_rng_key(1, SAMPLE_ROLE_TRACK_KEY, 6, 2), d = sample_rng_key(1, SAMPLE_ROLE_TRACK_KEY, 5, 3);
    check_true("sample_rng_key: role, step and image give distinct streams, tag 0xA",
               a.stream != b.stream && a.stream != c.stream && a.stream != d.stream && (a.stream >> 60) == 0xA);
  }
  // Uniformity of the subset draw: 16 of 64, 4000 draws; each element's count ~ Binomial(4000,
  // 1/4): mean 1000, sd 27.4; all 64 within 5 sd.
  {
    int64_t hits[64] = {0}, gal[64];
    for (int d = 0; d < 4000; d++) {
      for (int i = 0; i < 64; i++) gal[i] = i;
      rng_key k = {g_seed, 77};
      sample_random_choice(gal, 64, 16, k, (uint64_t)d);
      for (int i = 0; i < 16; i++) hits[gal[i]]++;
    }
    double worst = 0;
    for (int i = 0; i < 64; i++) worst = fmax(worst, fabs((double)hits[i] - 1000.0));
    snprintf(what, sizeof what, "random choice uniform: max |count - 1000| = %.0f <= 137 (5 sd)", worst);
    check_true(what, worst <= 137);
  }
}

// ------------------------------------------------------------------ track targets
// Independent check of one pair's targets: shapes, ROI boxes, ref ordering and the target
// matrix recomputed from instance ids.
static int check_pair(const char *name, const track_view *kv, const track_view *rv, const track_targets *t) {
  char what[200];
  int ok = t->num_key <= 256 && t->num_ref <= 512 && t->num_ref_pos <= 256;
  int64_t rneg = t->num_ref - t->num_ref_pos;
  ok &= rneg <= 3 * (t->num_ref_pos > 1 ? t->num_ref_pos : 1);
  for (int64_t p = 0; p < t->num_key; p++) ok &= t->key_gt[p] >= 0 && t->key_gt[p] < kv->num_gts;
  for (int64_t q = 0; q < t->num_ref; q++)
    ok &= q < t->num_ref_pos ? (t->ref_gt[q] >= 0 && t->ref_gt[q] < rv->num_gts) : t->ref_gt[q] == -1;
  // Key positives: IoU >= 0.7 with their GT (a prepended GT has IoU 1).
  for (int64_t p = 0; p < t->num_key; p++) {
    float iou;
    bbox_overlaps(1, kv->gts + 4 * t->key_gt[p], 1, t->key_rois + 4 * p, &iou);
    ok &= iou >= 0.7f;
  }
  int64_t mism = 0, pos_entries = 0;
  for (int64_t p = 0; p < t->num_key; p++) {
    int64_t id = kv->ids[t->key_gt[p]];
    for (int64_t q = 0; q < t->num_ref; q++) {
      float want = (q < t->num_ref_pos && id > 0 && rv->ids[t->ref_gt[q]] == id) ? 1.0f : 0.0f;
      mism += t->target[p * t->num_ref + q] != want;
      pos_entries += want > 0;
    }
  }
  snprintf(what, sizeof what, "track %s: %lld key RoIs, %lld ref RoIs (%lld pos), %lld positive pairs; ids re-derived (%lld mismatches)",
           name, (long long)t->num_key, (long long)t->num_ref, (long long)t->num_ref_pos, (long long)pos_entries,
           (long long)mism);
  return check_true(what, ok && mism == 0);
}

static void test_track(void) {
  char what[200];
  float img_h = 480, img_w = 640;
  // Key: 5 GTs, ids 11 12 13 14 0; ref: 4 GTs, ids 13 11 15 12 (14 absent from the ref view, id
  // 0 never matches, 15 only in the ref view).
  float kg[5 * 4] = {20, 30, 140, 200, 300, 40, 420, 160, 100, 250, 260, 400, 450, 300, 600, 460, 500, 20, 620, 120};
  int64_t kid[5] = {11, 12, 13, 14, 0};
  float rg[4 * 4] = {110, 240, 270, 410, 25, 35, 150, 210, 200, 200, 300, 300, 310, 45, 430, 170};
  int64_t rid[4] = {13, 11, 15, 12};
  jitter_proposal_cfg jc = jitter_proposal_cfg_default();
  jc.scale = 0.05f;
  int64_t nkp = jitter_proposal_count(&jc, 5), nrp = jitter_proposal_count(&jc, 4);
  float *kp = malloc((size_t)nkp * 4 * sizeof(float)), *rp = malloc((size_t)nrp * 4 * sizeof(float));
  rng_key jk = sample_rng_key(g_seed, SAMPLE_ROLE_JITTER_KEY, 1, 0), jr = sample_rng_key(g_seed, SAMPLE_ROLE_JITTER_REF, 1, 0);
  check_true("jitter proposals: count = G * copies + random",
             jitter_proposals(&jc, 5, kg, img_h, img_w, jk, kp) == nkp && nkp == 5 * 8 + 64);
  jitter_proposals(&jc, 4, rg, img_h, img_w, jr, rp);
  int inside = 1, close = 0;
  for (int64_t i = 0; i < nkp; i++) {
    float *b = kp + 4 * i;
    inside &= b[0] >= 0 && b[1] >= 0 && b[2] <= img_w && b[3] <= img_h && b[2] - b[0] >= 1 && b[3] - b[1] >= 1;
    if (i < 40) {
      float iou;
      bbox_overlaps(1, kg + 4 * (i / 8), 1, b, &iou);
      close += iou >= 0.7f;
    }
  }
  snprintf(what, sizeof what, "jitter proposals inside the image, >= 1 px; %d of 40 copies at IoU >= 0.7 (scale 0.05)", close);
  check_true(what, inside && close >= 30);
  float *kp2 = malloc((size_t)nkp * 4 * sizeof(float));
  jitter_proposals(&jc, 5, kg, img_h, img_w, jk, kp2);
  check_true("jitter proposals deterministic per key", !memcmp(kp, kp2, (size_t)nkp * 4 * sizeof(float)));
  jitter_proposals(&jc, 5, kg, img_h, img_w, jr, kp2);
  check_true("jitter proposals differ with the stream", memcmp(kp, kp2, (size_t)nkp * 4 * sizeof(float)) != 0);

  track_sample_cfg cfg = track_sample_cfg_default();
  track_view kv = {nkp, kp, 5, kg, kid}, rv = {nrp, rp, 4, rg, rid};
  rng_key kk = sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_KEY, 1, 0), rk = sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_REF, 1, 0);
  track_targets t;
  track_targets_pair(&cfg, &kv, &rv, kk, rk, &t);
  check_pair("jittered pair", &kv, &rv, &t);
  // Rows of id 14 (absent from ref) and id 0 are empty; others have >= 1 positive (the ref GT
  // itself is always a ref positive here: few candidates, all sampled).
  int rows_ok = 1;
  for (int64_t p = 0; p < t.num_key; p++) {
    double s = 0;
    for (int64_t q = 0; q < t.num_ref; q++) s += t.target[p * t.num_ref + q];
    int64_t id = kid[t.key_gt[p]];
    rows_ok &= (id == 14 || id == 0) ? s == 0 : s >= 1;
  }
  int has14 = 0;
  for (int64_t p = 0; p < t.num_key; p++) has14 |= kid[t.key_gt[p]] == 14;
  check_true("track: rows of instances absent from the ref view (and id 0) are all 0, others >= 1", rows_ok && has14);
  // Same keys -> same result; ref negatives all zero columns.
  track_targets t2;
  track_targets_pair(&cfg, &kv, &rv, kk, rk, &t2);
  check_true("track: deterministic per key",
             t2.num_key == t.num_key && t2.num_ref == t.num_ref &&
                 !memcmp(t2.target, t.target, (size_t)(t.num_key * t.num_ref) * sizeof(float)) &&
                 !memcmp(t2.ref_rois, t.ref_rois, (size_t)t.num_ref * 4 * sizeof(float)));
  track_targets_free(&t2), track_targets_free(&t);

  // No GTs in either view: no key RoIs; the ref view keeps 3 negatives (neg_pos_ub 3 * max(1, 0)).
  {
    track_view k0 = {nkp, kp, 0, kg, kid}, r0 = {nrp, rp, 0, rg, rid};
    track_targets_pair(&cfg, &k0, &r0, kk, rk, &t);
    check_true("track, no GTs: 0 key RoIs, 3 ref negatives", t.num_key == 0 && t.num_ref == 3 && t.num_ref_pos == 0);
    track_targets_free(&t);
  }
  // A key GT with IoU 0 to every proposal: it is still a key positive (prepended GT), alone.
  {
    float fg[2 * 4] = {20, 30, 140, 200, 600, 440, 630, 470};
    int64_t fid[2] = {11, 13};
    float props[3 * 4] = {22, 30, 140, 200, 0, 0, 50, 50, 300, 300, 350, 350};
    track_view k1 = {3, props, 2, fg, fid};
    track_targets_pair(&cfg, &k1, &rv, kk, rk, &t);
    int64_t n_far = 0;
    for (int64_t p = 0; p < t.num_key; p++) n_far += t.key_gt[p] == 1;
    check_true("track, GT with zero IoU to all proposals: only the GT itself samples it", n_far == 1);
    check_pair("far GT", &k1, &rv, &t);
    track_targets_free(&t);
  }
  // Thousands of proposals: 60 GTs per view, 2000 random boxes + 8 copies each.
  {
    int64_t G = 60;
    float *g1 = malloc((size_t)G * 4 * sizeof(float)), *g2 = malloc((size_t)G * 4 * sizeof(float));
    int64_t *i1 = malloc((size_t)G * sizeof(int64_t)), *i2 = malloc((size_t)G * sizeof(int64_t));
    rng_key bk = {g_seed, 4242};
    for (int64_t i = 0; i < G; i++) {
      for (int v = 0; v < 2; v++) {
        float *b = (v ? g2 : g1) + 4 * i;
        float u0 = rng_uniform(bk.seed, bk.stream, 8 * i + 4 * v), u1 = rng_uniform(bk.seed, bk.stream, 8 * i + 4 * v + 1);
        float u2 = rng_uniform(bk.seed, bk.stream, 8 * i + 4 * v + 2), u3 = rng_uniform(bk.seed, bk.stream, 8 * i + 4 * v + 3);
        float w = 20 + 200 * u2, h = 20 + 200 * u3;
        b[0] = u0 * (img_w - w), b[1] = u1 * (img_h - h), b[2] = b[0] + w, b[3] = b[1] + h;
      }
      i1[i] = 1000 + i;
      i2[i] = 1000 + (i * 7) % 61;  // distinct ids, shuffled; one key id absent, one ref-only
    }
    jitter_proposal_cfg big = {8, 0.1f, 2000};
    int64_t n1 = jitter_proposal_count(&big, G);
    float *p1 = malloc((size_t)n1 * 4 * sizeof(float)), *p2 = malloc((size_t)n1 * 4 * sizeof(float));
    jitter_proposals(&big, G, g1, img_h, img_w, sample_rng_key(g_seed, SAMPLE_ROLE_JITTER_KEY, 2, 1), p1);
    jitter_proposals(&big, G, g2, img_h, img_w, sample_rng_key(g_seed, SAMPLE_ROLE_JITTER_REF, 2, 1), p2);
    track_view k2 = {n1, p1, G, g1, i1}, r2 = {n1, p2, G, g2, i2};
    double t0 = omp_get_wtime();
    track_targets_pair(&cfg, &k2, &r2, sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_KEY, 2, 1),
                       sample_rng_key(g_seed, SAMPLE_ROLE_TRACK_REF, 2, 1), &t);
    double dt = omp_get_wtime() - t0;
    check_pair("2480 proposals, 60 GTs", &k2, &r2, &t);
    snprintf(what, sizeof what, "track, thousands: %.1f ms; key positives capped at 256 (%lld)", dt * 1e3, (long long)t.num_key);
    check_true(what, t.num_key <= 256 && t.num_key > 60);
    // Another seed draws other samples.
    track_targets t3;
    track_targets_pair(&cfg, &k2, &r2, sample_rng_key(g_seed + 5, SAMPLE_ROLE_TRACK_KEY, 2, 1),
                       sample_rng_key(g_seed + 5, SAMPLE_ROLE_TRACK_REF, 2, 1), &t3);
    int differs = t3.num_key != t.num_key || memcmp(t3.key_rois, t.key_rois, (size_t)t.num_key * 16) != 0;
    check_true("track: another seed samples differently", differs);
    track_targets_free(&t3), track_targets_free(&t);
    free(g1), free(g2), free(i1), free(i2), free(p1), free(p2);
  }
  free(kp), free(rp), free(kp2);
}

int main(int argc, char **argv) {
  g_seed = test_begin("train_targets", 20240607);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  test_assign(f);
  test_rpn(f);
  test_rcnn(f, "agnostic", 1);
  test_rcnn(f, "multiclass", 3);
  test_sampler();
  test_track();
  h5_close(f);
  return test_end();
}
