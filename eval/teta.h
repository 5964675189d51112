// TETA (Li et al., "Tracking Every Thing in the Wild", ECCV 2022): TETA = (LocA + AssocA + ClsA)/3
// over class-agnostic local clusters. Reconstructed from the paper and the structure of the SysCV
// `teta` package (not on PyPI, not available to check against); every choice that could not be
// confirmed is listed in metrics_teta.c.
#ifndef MASA_EVAL_TETA_H
#define MASA_EVAL_TETA_H

#include <stdint.h>

#define TETA_NUM_ALPHA 20  // np.arange(0.0, 0.99, 0.05): 0.00, 0.05, ..., 0.95
#define TETA_CLS_ALPHA0 10  // classification is scored at alphas >= 0.5 (indices 10..19)

typedef struct {
  double loc_tp[TETA_NUM_ALPHA], loc_fn[TETA_NUM_ALPHA], loc_fp[TETA_NUM_ALPHA];
  double cls_tp[TETA_NUM_ALPHA], cls_fn[TETA_NUM_ALPHA], cls_fp[TETA_NUM_ALPHA];
  double loca[TETA_NUM_ALPHA], locre[TETA_NUM_ALPHA], locpr[TETA_NUM_ALPHA];
  double assoca[TETA_NUM_ALPHA], assocre[TETA_NUM_ALPHA], assocpr[TETA_NUM_ALPHA];
  double teta[TETA_NUM_ALPHA];
  double clsa, clsre, clspr;  // means over alphas 0.5..0.95
} teta_metrics;

// One frame of one video, all classes. Class indices are 0..num_classes-1; a prediction of a
// class outside the evaluated set has class -1.
typedef struct {
  int n_gt, n_tr;
  int64_t *gt_ids, *tr_ids;  // unique within the video per frame
  int *gt_cls, *tr_cls;
  double *sim;  // (n_gt, n_tr) IoU
} teta_frame;

typedef struct {
  int num_frames;
  teta_frame *frames;
} teta_seq;

void teta_seq_free(teta_seq *s);
double teta_alpha(int a);

// Scores one video for every class: res[num_classes]. cls_fp (num_classes, TETA_NUM_ALPHA) gets
// the wrong-class predictions matched at alpha >= 0.5, charged to the predicted class (added to
// Cls_FP after sequences are combined). exhaustive: every prediction of class c outside the
// clusters is a classification FP too (exhaustively labelled data such as BDD100K).
void teta_eval_seq(const teta_seq *s, int num_classes, int exhaustive, teta_metrics *res, double *cls_fp);
// Sums counts, weights AssocA/Re/Pr by Loc_TP, adds cls_fp (may be NULL), computes final fields.
void teta_combine(const teta_metrics *parts, int n, const double *cls_fp, teta_metrics *out);
// Mean over classes of the float fields; ignore_empty skips classes without any Loc TP/FN/FP.
void teta_class_average(const teta_metrics *parts, int n, int ignore_empty, teta_metrics *out);
double teta_mean(const double *arr);  // over the 20 alphas

#endif
