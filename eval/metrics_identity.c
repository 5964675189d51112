// Identity metrics (Ristani et al. 2016), as trackeval/metrics/identity.py computes them: count,
// for every (gt id, tracker id) pair, the frames where their boxes overlap with IoU >= t; then one
// global assignment of ids over an (ng + nt)^2 cost of IDFN + IDFP, with 1e10 on the entries that
// would pair a gt with another gt's dummy (and likewise for trackers). IDTP = gt dets - IDFN.
// Any optimal assignment gives the same IDFN and IDFP (both equal a count minus the matched
// overlap), so these numbers do not depend on tie-breaking; motmetrics' id_global_assignment
// builds the same matrices with NaN for the forbidden entries.
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/assign.h"
#include "eval/metrics.h"

static double dmax1(double x) { return x > 1.0 ? x : 1.0; }

void identity_finalize(identity_metrics *m) {
  double tp = (double)m->idtp, fn = (double)m->idfn, fp = (double)m->idfp;
  m->idr = tp / dmax1(tp + fn);
  m->idp = tp / dmax1(tp + fp);
  m->idf1 = tp / dmax1(tp + 0.5 * fp + 0.5 * fn);
}

void identity_eval(const eval_seq *s, clear_convention conv, double threshold, identity_metrics *out) {
  memset(out, 0, sizeof *out);
  if (s->num_tr_dets == 0) {
    out->idfn = s->num_gt_dets;
    return;
  }
  if (s->num_gt_dets == 0) {
    out->idfp = s->num_tr_dets;
    return;
  }
  const int64_t ng = s->num_gt_ids, nt = s->num_tr_ids, n = ng + nt;
  double *pm = callocCheck((size_t)(ng * nt), sizeof(double));
  double *gc = callocCheck((size_t)ng, sizeof(double)), *tc = callocCheck((size_t)nt, sizeof(double));
  for (int t = 0; t < s->num_frames; t++) {
    const eval_frame *f = &s->frames[t];
    for (int i = 0; i < f->n_gt; i++)
      for (int j = 0; j < f->n_tr; j++) {
        double sim = f->sim[(size_t)i * f->n_tr + j];
        int ok = conv == CLEAR_MOTMETRICS ? !(1 - sim > 1 - threshold) : sim >= threshold;
        if (ok) pm[(int64_t)f->gt_ids[i] * nt + f->tr_ids[j]] += 1;
      }
    for (int i = 0; i < f->n_gt; i++) gc[f->gt_ids[i]] += 1;
    for (int j = 0; j < f->n_tr; j++) tc[f->tr_ids[j]] += 1;
  }
  double *fn = callocCheck((size_t)(n * n), sizeof(double)), *fp = callocCheck((size_t)(n * n), sizeof(double));
  for (int64_t r = ng; r < n; r++)
    for (int64_t c = 0; c < nt; c++) fp[r * n + c] = 1e10;
  for (int64_t r = 0; r < ng; r++)
    for (int64_t c = nt; c < n; c++) fn[r * n + c] = 1e10;
  for (int64_t g = 0; g < ng; g++) {
    for (int64_t c = 0; c < nt; c++) fn[g * n + c] = gc[g];
    fn[g * n + nt + g] = gc[g];
  }
  for (int64_t h = 0; h < nt; h++) {
    for (int64_t r = 0; r < ng; r++) fp[r * n + h] = tc[h];
    fp[(h + ng) * n + h] = tc[h];
  }
  for (int64_t g = 0; g < ng; g++)
    for (int64_t h = 0; h < nt; h++) {
      fn[g * n + h] -= pm[g * nt + h];
      fp[g * n + h] -= pm[g * nt + h];
    }
  double *cost = mallocCheck((size_t)(n * n) * sizeof(double));
  for (int64_t q = 0; q < n * n; q++) cost[q] = fn[q] + fp[q];
  int64_t *rows = mallocCheck((size_t)n * sizeof(int64_t)), *cols = mallocCheck((size_t)n * sizeof(int64_t));
  int64_t k = linear_sum_assignment(cost, n, n, rows, cols);
  masa_assert(k == n);
  double sfn = 0, sfp = 0, sgc = 0;
  for (int64_t q = 0; q < n; q++) {
    sfn += fn[rows[q] * n + cols[q]];
    sfp += fp[rows[q] * n + cols[q]];
  }
  for (int64_t g = 0; g < ng; g++) sgc += gc[g];
  out->idfn = (int64_t)sfn;
  out->idfp = (int64_t)sfp;
  out->idtp = (int64_t)(sgc - (double)out->idfn);
  identity_finalize(out);
  free(pm);
  free(gc);
  free(tc);
  free(fn);
  free(fp);
  free(cost);
  free(rows);
  free(cols);
}

static void identity_sum(const identity_metrics *parts, int n, identity_metrics *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < n; k++) {
    out->idtp += parts[k].idtp;
    out->idfn += parts[k].idfn;
    out->idfp += parts[k].idfp;
  }
}

void identity_combine(const identity_metrics *parts, int n, identity_metrics *out) {
  identity_sum(parts, n, out);
  identity_finalize(out);
}

void identity_class_average(const identity_metrics *parts, int n, identity_metrics *out) {
  identity_sum(parts, n, out);
  double f1 = 0, re = 0, pr = 0;
  for (int k = 0; k < n; k++) {
    f1 += parts[k].idf1;
    re += parts[k].idr;
    pr += parts[k].idp;
  }
  out->idf1 = f1 / n;
  out->idr = re / n;
  out->idp = pr / n;
}
