// Tracking metrics on one prepared sequence: CLEAR MOT, identity (IDF1) and HOTA, plus their
// combination over sequences and classes. TETA, which needs classes and its own clustering, has
// its header in eval/teta.h.
//
// Conventions are TrackEval's (trackeval/metrics/{clear,identity,hota}.py), reproduced down to the
// order of floating-point sums where a value feeds a matching decision:
//   - similarity = box IoU (eval_box_iou), pairs need IoU >= 0.5 (CLEAR: >= 0.5 - DBL_EPSILON,
//     identity: >= 0.5 exactly, as each file writes it);
//   - CLEAR matches each frame by Hungarian assignment on 1000 * [pair continues the previous
//     frame's match] + IoU; IDSW compares with the last matched id any number of frames back;
//     Frag counts re-starts of tracking; MT > 80 %, PT >= 20 % of a gt track's frames matched;
//   - identity: one global assignment of gt and tracker ids minimising IDFN + IDFP;
//   - HOTA: per alpha in 0.05, 0.10, ..., 0.95 (np.arange(0.05, 0.99, 0.05)), per-frame Hungarian
//     on global-alignment-score x IoU, then pairs with IoU >= alpha - DBL_EPSILON count.
// py-motmetrics' CLEAR conventions are available too (clear_convention) so that the two
// reference implementations can each be checked on their own terms; reported numbers use
// TrackEval's.
#ifndef MASA_EVAL_METRICS_H
#define MASA_EVAL_METRICS_H

#include <stdint.h>

#define HOTA_NUM_ALPHA 19

// One frame after benchmark preprocessing. Ids are contiguous (0..num_*_ids-1 over the sequence).
typedef struct {
  int n_gt, n_tr;
  int *gt_ids;  // (n_gt)
  int *tr_ids;  // (n_tr)
  double *sim;  // (n_gt, n_tr) row-major IoU
} eval_frame;

typedef struct {
  int num_frames;
  eval_frame *frames;  // (num_frames)
  int num_gt_ids, num_tr_ids;
  int64_t num_gt_dets, num_tr_dets;
} eval_seq;

void eval_seq_free(eval_seq *s);

// Boxes are (x0, y0, x1, y1). TrackEval's _calculate_box_ious: zero when either area or the union
// is <= DBL_EPSILON. do_ioa: intersection over the area of a (crowd ignore regions).
double eval_box_iou(const double *a, const double *b, int do_ioa);

// numpy's pairwise summation (add.reduce over a contiguous axis), so sums that feed matching
// decisions round exactly as TrackEval's do.
double np_pairwise_sum(const double *a, int64_t n, int64_t stride);

typedef enum {
  CLEAR_TRACKEVAL = 0,   // trackeval/metrics/clear.py
  CLEAR_MOTMETRICS = 1,  // motmetrics/mot.py MOTAccumulator.update + metrics.py
} clear_convention;

typedef struct {
  int64_t tp, fn, fp, idsw, mt, pt, ml, frag, frames;
  double motp_sum;  // sum of IoU over matches (motmetrics reports 1 - MOTP, a distance)
  double mota, motp, moda, recall, precision, mtr, ptr, mlr, smota, f1, fp_per_frame, motal;
} clear_metrics;

// threshold: IoU needed for a match (0.5). Per-sequence values follow TrackEval exactly, including
// its early returns for sequences without gt or without predictions (derived fields left 0).
void clear_eval(const eval_seq *s, clear_convention conv, double threshold, clear_metrics *out);
void clear_finalize(clear_metrics *m);
// Sum of counts, then derived fields (TrackEval combine_sequences / combine_classes_det_averaged).
void clear_combine(const clear_metrics *parts, int n, clear_metrics *out);
// Counts summed, float fields averaged over the n classes (combine_classes_class_averaged with
// ignore_empty_classes false, as TrackEval's evaluator calls it).
void clear_class_average(const clear_metrics *parts, int n, clear_metrics *out);

typedef struct {
  int64_t idtp, idfn, idfp;
  double idf1, idr, idp;
} identity_metrics;

// conv only changes the threshold test: TrackEval IoU >= t, motmetrics 1 - IoU <= 1 - t.
void identity_eval(const eval_seq *s, clear_convention conv, double threshold, identity_metrics *out);
void identity_finalize(identity_metrics *m);
void identity_combine(const identity_metrics *parts, int n, identity_metrics *out);
void identity_class_average(const identity_metrics *parts, int n, identity_metrics *out);

typedef struct {
  double tp[HOTA_NUM_ALPHA], fn[HOTA_NUM_ALPHA], fp[HOTA_NUM_ALPHA];
  double hota[HOTA_NUM_ALPHA], deta[HOTA_NUM_ALPHA], assa[HOTA_NUM_ALPHA];
  double detre[HOTA_NUM_ALPHA], detpr[HOTA_NUM_ALPHA], assre[HOTA_NUM_ALPHA];
  double asspr[HOTA_NUM_ALPHA], loca[HOTA_NUM_ALPHA], owta[HOTA_NUM_ALPHA];
  double hota0, loca0, hotaloca0;  // at alpha 0.05
} hota_metrics;

double hota_alpha(int a);  // 0.05 + a * 0.05, as np.arange computes it
void hota_eval(const eval_seq *s, hota_metrics *out);
void hota_combine(const hota_metrics *parts, int n, hota_metrics *out);
void hota_class_average(const hota_metrics *parts, int n, hota_metrics *out);
// Mean over the alphas, as TrackEval's summary prints (np.mean).
double hota_mean(const double *arr);

#endif
