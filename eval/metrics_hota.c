// HOTA (Luiten et al., IJCV 2021) as trackeval/metrics/hota.py computes it.
//  1. Global alignment score between every gt id and tracker id: per frame each IoU s_ij is
//     normalised to s_ij / (sum_col_j + sum_row_i - s_ij) and accumulated into A_gt,tr; then
//     A / (n_gt_dets(id) + n_tr_dets(id) - A).
//  2. Per frame one Hungarian assignment maximising A x IoU (shared by all alphas); for each alpha
//     the assigned pairs with IoU >= alpha - eps are TPs.
//  3. AssA_alpha = sum over (gt, tr) pairs of TPA^2 / (gt dets + tr dets - TPA), divided by TP
//     (= mean over TPs of the pair's association IoU); AssRe / AssPr likewise.
//  4. DetA = TP / (TP + FN + FP), HOTA = sqrt(DetA * AssA), LocA = mean IoU of TPs.
// Sums that feed the matching use numpy's summation order (np_pairwise_sum) so the Hungarian sees
// bit-identical scores.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/assign.h"
#include "eval/metrics.h"

#define NA HOTA_NUM_ALPHA

double hota_alpha(int a) { return 0.05 + a * 0.05; }

static double dmax(double x, double lo) { return x > lo ? x : lo; }

double hota_mean(const double *arr) { return np_pairwise_sum(arr, NA, 1) / NA; }

static void hota_finalize(hota_metrics *r) {
  for (int a = 0; a < NA; a++) {
    r->detre[a] = r->tp[a] / dmax(r->tp[a] + r->fn[a], 1);
    r->detpr[a] = r->tp[a] / dmax(r->tp[a] + r->fp[a], 1);
    r->deta[a] = r->tp[a] / dmax(r->tp[a] + r->fn[a] + r->fp[a], 1);
    r->hota[a] = sqrt(r->deta[a] * r->assa[a]);
    r->owta[a] = sqrt(r->detre[a] * r->assa[a]);
  }
  r->hota0 = r->hota[0];
  r->loca0 = r->loca[0];
  r->hotaloca0 = r->hota0 * r->loca0;
}

void hota_eval(const eval_seq *s, hota_metrics *r) {
  memset(r, 0, sizeof *r);
  if (s->num_tr_dets == 0 || s->num_gt_dets == 0) {
    for (int a = 0; a < NA; a++) {
      if (s->num_tr_dets == 0)
        r->fn[a] = (double)s->num_gt_dets;
      else
        r->fp[a] = (double)s->num_tr_dets;
      r->loca[a] = 1.0;
    }
    r->loca0 = 1.0;
    return;
  }
  const int64_t ng = s->num_gt_ids, nt = s->num_tr_ids;
  double *pm = callocCheck((size_t)(ng * nt), sizeof(double));
  double *gc = callocCheck((size_t)ng, sizeof(double)), *tc = callocCheck((size_t)nt, sizeof(double));
  for (int t = 0; t < s->num_frames; t++) {
    const eval_frame *f = &s->frames[t];
    const int n = f->n_gt, m = f->n_tr;
    if (n > 0 && m > 0) {
      double *colsum = callocCheck((size_t)m, sizeof(double));  // sum(0): row by row
      double *rowsum = mallocCheck((size_t)n * sizeof(double));  // sum(1): pairwise per row
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) colsum[j] += f->sim[(size_t)i * m + j];
      for (int i = 0; i < n; i++) rowsum[i] = np_pairwise_sum(f->sim + (size_t)i * m, m, 1);
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
          double sim = f->sim[(size_t)i * m + j];
          double denom = colsum[j] + rowsum[i] - sim;
          double v = denom > 0 + DBL_EPSILON ? sim / denom : 0;
          pm[(int64_t)f->gt_ids[i] * nt + f->tr_ids[j]] += v;
        }
      free(colsum);
      free(rowsum);
    }
    for (int i = 0; i < n; i++) gc[f->gt_ids[i]] += 1;
    for (int j = 0; j < m; j++) tc[f->tr_ids[j]] += 1;
  }
  double *gas = mallocCheck((size_t)(ng * nt) * sizeof(double));
  for (int64_t g = 0; g < ng; g++)
    for (int64_t h = 0; h < nt; h++) gas[g * nt + h] = pm[g * nt + h] / (gc[g] + tc[h] - pm[g * nt + h]);
  // matches_counts[a] (ng, nt)
  double *mc = callocCheck((size_t)(NA * ng * nt), sizeof(double));
  for (int t = 0; t < s->num_frames; t++) {
    const eval_frame *f = &s->frames[t];
    const int n = f->n_gt, m = f->n_tr;
    if (n == 0) {
      for (int a = 0; a < NA; a++) r->fp[a] += m;
      continue;
    }
    if (m == 0) {
      for (int a = 0; a < NA; a++) r->fn[a] += n;
      continue;
    }
    double *cost = mallocCheck((size_t)n * m * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < m; j++)
        cost[(size_t)i * m + j] =
            -(gas[(int64_t)f->gt_ids[i] * nt + f->tr_ids[j]] * f->sim[(size_t)i * m + j]);
    int64_t k = n < m ? n : m;
    int64_t *rows = mallocCheck((size_t)k * sizeof(int64_t)), *cols = mallocCheck((size_t)k * sizeof(int64_t));
    int64_t got = linear_sum_assignment(cost, n, m, rows, cols);
    masa_assert(got == k);
    for (int a = 0; a < NA; a++) {
      double alpha = hota_alpha(a);
      int nm = 0;
      double loc = 0;  // Python sum() over the matched similarities
      for (int64_t q = 0; q < k; q++) {
        double sim = f->sim[rows[q] * m + cols[q]];
        if (!(sim >= alpha - DBL_EPSILON)) continue;
        nm++;
        loc += sim;
        mc[(size_t)a * ng * nt + (size_t)f->gt_ids[rows[q]] * nt + f->tr_ids[cols[q]]] += 1;
      }
      r->tp[a] += nm;
      r->fn[a] += n - nm;
      r->fp[a] += m - nm;
      if (nm > 0) r->loca[a] += loc;
    }
    free(cost);
    free(rows);
    free(cols);
  }
  double *tmp = mallocCheck((size_t)(ng * nt) * sizeof(double));
  for (int a = 0; a < NA; a++) {
    const double *mca = mc + (size_t)a * ng * nt;
    double denom_tp = dmax(r->tp[a], 1);
    for (int64_t g = 0; g < ng; g++)
      for (int64_t h = 0; h < nt; h++) {
        double c = mca[g * nt + h];
        tmp[g * nt + h] = c * (c / dmax(gc[g] + tc[h] - c, 1));
      }
    r->assa[a] = np_pairwise_sum(tmp, ng * nt, 1) / denom_tp;
    for (int64_t g = 0; g < ng; g++)
      for (int64_t h = 0; h < nt; h++) {
        double c = mca[g * nt + h];
        tmp[g * nt + h] = c * (c / dmax(gc[g], 1));
      }
    r->assre[a] = np_pairwise_sum(tmp, ng * nt, 1) / denom_tp;
    for (int64_t g = 0; g < ng; g++)
      for (int64_t h = 0; h < nt; h++) {
        double c = mca[g * nt + h];
        tmp[g * nt + h] = c * (c / dmax(tc[h], 1));
      }
    r->asspr[a] = np_pairwise_sum(tmp, ng * nt, 1) / denom_tp;
  }
  for (int a = 0; a < NA; a++) r->loca[a] = dmax(r->loca[a], 1e-10) / dmax(r->tp[a], 1e-10);
  hota_finalize(r);
  free(pm);
  free(gc);
  free(tc);
  free(gas);
  free(mc);
  free(tmp);
}

void hota_combine(const hota_metrics *parts, int n, hota_metrics *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < n; k++)
    for (int a = 0; a < NA; a++) {
      out->tp[a] += parts[k].tp[a];
      out->fn[a] += parts[k].fn[a];
      out->fp[a] += parts[k].fp[a];
    }
  for (int a = 0; a < NA; a++) {
    double re = 0, pr = 0, as = 0, loc = 0;
    for (int k = 0; k < n; k++) {
      re += parts[k].assre[a] * parts[k].tp[a];
      pr += parts[k].asspr[a] * parts[k].tp[a];
      as += parts[k].assa[a] * parts[k].tp[a];
      loc += parts[k].loca[a] * parts[k].tp[a];
    }
    out->assre[a] = re / dmax(out->tp[a], 1);
    out->asspr[a] = pr / dmax(out->tp[a], 1);
    out->assa[a] = as / dmax(out->tp[a], 1);
    out->loca[a] = dmax(loc, 1e-10) / dmax(out->tp[a], 1e-10);
  }
  hota_finalize(out);
}

void hota_class_average(const hota_metrics *parts, int n, hota_metrics *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < n; k++) {
    const hota_metrics *p = &parts[k];
    for (int a = 0; a < NA; a++) {
      out->tp[a] += p->tp[a];
      out->fn[a] += p->fn[a];
      out->fp[a] += p->fp[a];
      out->hota[a] += p->hota[a] / n;
      out->deta[a] += p->deta[a] / n;
      out->assa[a] += p->assa[a] / n;
      out->detre[a] += p->detre[a] / n;
      out->detpr[a] += p->detpr[a] / n;
      out->assre[a] += p->assre[a] / n;
      out->asspr[a] += p->asspr[a] / n;
      out->loca[a] += p->loca[a] / n;
      out->owta[a] += p->owta[a] / n;
    }
    out->hota0 += p->hota0 / n;
    out->loca0 += p->loca0 / n;
    out->hotaloca0 += p->hotaloca0 / n;
  }
}
