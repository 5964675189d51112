// CLEAR MOT metrics (Bernardin & Stiefelhagen 2008) in two reference conventions.
//
// TrackEval (trackeval/metrics/clear.py), the one we report:
//   per frame, Hungarian on 1000 * [tracker id == the gt's match in the previous *processed*
//   frame] + IoU, pairs with IoU < t - eps scored 0 and dropped; a frame without gt or without
//   predictions is skipped entirely (it neither breaks a continuing match nor counts for Frag);
//   IDSW when the matched id differs from the gt's last matched id (any gap); Frag = number of
//   times a gt goes from untracked to tracked, minus one; MT: matched ratio > 0.8, PT >= 0.2.
//   Sequences with no predictions or no gt return early with only FN/ML or FP set and MLR = 1.
// py-motmetrics (motmetrics/mot.py MOTAccumulator.update, metrics.py):
//   pairs valid when 1 - IoU <= 1 - t; first every gt keeps its last matched hypothesis (any gap)
//   if that pair is valid now, then the rest by Hungarian on the distances (invalid pairs replaced
//   by lap.add_expensive_edges' large constant); SWITCH when the hypothesis differs from the gt's
//   last; Frag = number of tracked->missed transitions between a gt's first and last tracked
//   frame (frames where the gt is absent are skipped); MT ratio >= 0.8, ML < 0.2.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/assign.h"
#include "eval/metrics.h"

static double dmax1(double x) { return x > 1.0 ? x : 1.0; }

void clear_finalize(clear_metrics *m) {
  double num_gt_ids = (double)(m->mt + m->ml + m->pt);
  double tp = (double)m->tp, fn = (double)m->fn, fp = (double)m->fp, idsw = (double)m->idsw;
  m->mtr = (double)m->mt / dmax1(num_gt_ids);
  m->mlr = (double)m->ml / dmax1(num_gt_ids);
  m->ptr = (double)m->pt / dmax1(num_gt_ids);
  m->recall = tp / dmax1(tp + fn);
  m->precision = tp / dmax1(tp + fp);
  m->moda = (tp - fp) / dmax1(tp + fn);
  m->mota = (tp - fp - idsw) / dmax1(tp + fn);
  m->motp = m->motp_sum / dmax1(tp);
  m->smota = (m->motp_sum - fp - idsw) / dmax1(tp + fn);
  m->f1 = tp / dmax1(tp + 0.5 * fn + 0.5 * fp);
  m->fp_per_frame = fp / dmax1((double)m->frames);
  double safe_log_idsw = m->idsw > 0 ? log10(idsw) : idsw;
  m->motal = (tp - fp - safe_log_idsw) / dmax1(tp + fn);
}

static void clear_eval_trackeval(const eval_seq *s, double thr, clear_metrics *r) {
  const int ng = s->num_gt_ids;
  int *id_count = callocCheck((size_t)ng + 1, sizeof(int));
  int *matched_count = callocCheck((size_t)ng + 1, sizeof(int));
  int *frag_count = callocCheck((size_t)ng + 1, sizeof(int));
  int *prev_id = mallocCheck(((size_t)ng + 1) * sizeof(int));     // last matched, any gap (IDSW)
  int *prev_step = mallocCheck(((size_t)ng + 1) * sizeof(int));   // matched in previous step
  int *was_tracked = mallocCheck(((size_t)ng + 1) * sizeof(int));
  for (int g = 0; g < ng; g++) prev_id[g] = prev_step[g] = -1;
  for (int t = 0; t < s->num_frames; t++) {
    const eval_frame *f = &s->frames[t];
    if (f->n_gt == 0) {
      r->fp += f->n_tr;
      continue;
    }
    if (f->n_tr == 0) {
      r->fn += f->n_gt;
      for (int i = 0; i < f->n_gt; i++) id_count[f->gt_ids[i]]++;
      continue;
    }
    const int n = f->n_gt, m = f->n_tr;
    double *score = mallocCheck((size_t)n * m * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < m; j++) {
        double sim = f->sim[(size_t)i * m + j];
        double sc = (f->tr_ids[j] == prev_step[f->gt_ids[i]] ? 1000.0 : 0.0) + sim;
        if (sim < thr - DBL_EPSILON) sc = 0;
        score[(size_t)i * m + j] = -sc;  // linear_sum_assignment(-score_mat)
      }
    int64_t k = n < m ? n : m;
    int64_t *rows = mallocCheck((size_t)k * sizeof(int64_t)), *cols = mallocCheck((size_t)k * sizeof(int64_t));
    int64_t np_ = linear_sum_assignment(score, n, m, rows, cols);
    masa_assert(np_ == k);
    int nm = 0;
    double motp = 0;  // Python sum() over the matched similarities, in row order
    for (int64_t q = 0; q < k; q++) {
      if (!(-score[rows[q] * m + cols[q]] > 0 + DBL_EPSILON)) continue;
      rows[nm] = rows[q];
      cols[nm] = cols[q];
      nm++;
    }
    for (int q = 0; q < nm; q++) {
      int g = f->gt_ids[rows[q]], h = f->tr_ids[cols[q]];
      if (prev_id[g] >= 0 && prev_id[g] != h) r->idsw++;
    }
    for (int i = 0; i < n; i++) id_count[f->gt_ids[i]]++;
    for (int g = 0; g < ng; g++) was_tracked[g] = prev_step[g] >= 0;
    for (int g = 0; g < ng; g++) prev_step[g] = -1;
    for (int q = 0; q < nm; q++) {
      int g = f->gt_ids[rows[q]], h = f->tr_ids[cols[q]];
      matched_count[g]++;
      prev_id[g] = h;
      prev_step[g] = h;
    }
    for (int g = 0; g < ng; g++)
      if (!was_tracked[g] && prev_step[g] >= 0) frag_count[g]++;
    for (int q = 0; q < nm; q++) motp += f->sim[rows[q] * m + cols[q]];
    r->tp += nm;
    r->fn += n - nm;
    r->fp += m - nm;
    if (nm > 0) r->motp_sum += motp;
    free(score);
    free(rows);
    free(cols);
  }
  for (int g = 0; g < ng; g++) {
    if (id_count[g] > 0) {
      double ratio = (double)matched_count[g] / (double)id_count[g];
      if (ratio > 0.8)
        r->mt++;
      else if (ratio >= 0.2)
        r->pt++;
    }
    if (frag_count[g] > 0) r->frag += frag_count[g] - 1;
  }
  r->ml = ng - r->mt - r->pt;
  r->frames = s->num_frames;
  free(id_count);
  free(matched_count);
  free(frag_count);
  free(prev_id);
  free(prev_step);
  free(was_tracked);
}

// motmetrics/lap.py add_expensive_edges + lsa_solve_scipy + _exclude_missing_edges.
// dist (n, m) with NaN for do-not-pair; returns the number of pairs with finite distance.
static int64_t motmetrics_lsa(const double *dist, int n, int m, int64_t *rows, int64_t *cols) {
  size_t nm = (size_t)n * m;
  double *cost = mallocCheck(nm * sizeof(double));
  int any_valid = 0, all_valid = 1;
  double c = 0;
  for (size_t q = 0; q < nm; q++) {
    if (isfinite(dist[q])) {
      any_valid = 1;
      if (fabs(dist[q]) > c) c = fabs(dist[q]);
    } else {
      all_valid = 0;
    }
  }
  if (all_valid) {
    memcpy(cost, dist, nm * sizeof(double));
  } else if (!any_valid) {
    for (size_t q = 0; q < nm; q++) cost[q] = 0;
  } else {
    double r = n < m ? n : m;
    c += 1;
    double large = 2 * r * c + 1;
    for (size_t q = 0; q < nm; q++) cost[q] = isfinite(dist[q]) ? dist[q] : large;
  }
  int64_t k = linear_sum_assignment(cost, n, m, rows, cols);
  masa_assert(k == (n < m ? n : m));
  int64_t kept = 0;
  for (int64_t q = 0; q < k; q++)
    if (isfinite(dist[rows[q] * m + cols[q]])) {
      rows[kept] = rows[q];
      cols[kept] = cols[q];
      kept++;
    }
  free(cost);
  return kept;
}

static void clear_eval_motmetrics(const eval_seq *s, double thr, clear_metrics *r) {
  const int ng = s->num_gt_ids;
  const double max_dist = 1.0 - thr;
  int *last_h = mallocCheck(((size_t)ng + 1) * sizeof(int));  // MOTAccumulator.m
  int *present = callocCheck((size_t)ng + 1, sizeof(int));
  int *tracked = callocCheck((size_t)ng + 1, sizeof(int));
  int *seen_tracked = callocCheck((size_t)ng + 1, sizeof(int));
  int *in_miss_run = callocCheck((size_t)ng + 1, sizeof(int));
  for (int g = 0; g < ng; g++) last_h[g] = -1;
  for (int t = 0; t < s->num_frames; t++) {
    const eval_frame *f = &s->frames[t];
    const int n = f->n_gt, m = f->n_tr;
    unsigned char *gmask = callocCheck((size_t)n + 1, 1), *hmask = callocCheck((size_t)m + 1, 1);
    if (n > 0 && m > 0) {
      double *dist = mallocCheck((size_t)n * m * sizeof(double));
      for (size_t q = 0; q < (size_t)n * m; q++) {
        double d = 1 - f->sim[q];
        dist[q] = d > max_dist ? NAN : d;
      }
      // 1. carry forward established correspondences
      for (int i = 0; i < n; i++) {
        int g = f->gt_ids[i];
        if (last_h[g] < 0) continue;
        int j = -1;
        for (int jj = 0; jj < m; jj++)
          if (!hmask[jj] && f->tr_ids[jj] == last_h[g]) {
            j = jj;
            break;
          }
        if (j < 0 || !isfinite(dist[(size_t)i * m + j])) continue;
        gmask[i] = hmask[j] = 1;
        r->tp++;
        r->motp_sum += f->sim[(size_t)i * m + j];
      }
      // 2. the rest by minimum total distance
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++)
          if (gmask[i] || hmask[j]) dist[(size_t)i * m + j] = NAN;
      int64_t k = n < m ? n : m;
      int64_t *rows = mallocCheck((size_t)k * sizeof(int64_t)), *cols = mallocCheck((size_t)k * sizeof(int64_t));
      int64_t kept = motmetrics_lsa(dist, n, m, rows, cols);
      for (int64_t q = 0; q < kept; q++) {
        int i = (int)rows[q], j = (int)cols[q];
        int g = f->gt_ids[i], h = f->tr_ids[j];
        if (last_h[g] >= 0 && last_h[g] != h) r->idsw++;
        last_h[g] = h;
        gmask[i] = hmask[j] = 1;
        r->tp++;
        r->motp_sum += f->sim[(size_t)i * m + j];
      }
      free(rows);
      free(cols);
      free(dist);
    }
    for (int i = 0; i < n; i++) {
      int g = f->gt_ids[i];
      present[g]++;
      if (gmask[i]) {
        tracked[g]++;
        if (in_miss_run[g]) r->frag++;
        in_miss_run[g] = 0;
        seen_tracked[g] = 1;
      } else {
        r->fn++;
        if (seen_tracked[g]) in_miss_run[g] = 1;
      }
    }
    for (int j = 0; j < m; j++)
      if (!hmask[j]) r->fp++;
    free(gmask);
    free(hmask);
  }
  for (int g = 0; g < ng; g++) {
    double ratio = present[g] ? (double)tracked[g] / present[g] : 0;
    if (ratio >= 0.8)
      r->mt++;
    else if (ratio >= 0.2)
      r->pt++;
    else
      r->ml++;
  }
  r->frames = s->num_frames;
  free(last_h);
  free(present);
  free(tracked);
  free(seen_tracked);
  free(in_miss_run);
}

void clear_eval(const eval_seq *s, clear_convention conv, double threshold, clear_metrics *out) {
  memset(out, 0, sizeof *out);
  if (conv == CLEAR_MOTMETRICS) {
    clear_eval_motmetrics(s, threshold, out);
    clear_finalize(out);
    return;
  }
  if (s->num_tr_dets == 0) {
    out->fn = s->num_gt_dets;
    out->ml = s->num_gt_ids;
    out->mlr = 1.0;
    return;
  }
  if (s->num_gt_dets == 0) {
    out->fp = s->num_tr_dets;
    out->mlr = 1.0;
    return;
  }
  clear_eval_trackeval(s, threshold, out);
  clear_finalize(out);
}

static void clear_sum(const clear_metrics *parts, int n, clear_metrics *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < n; k++) {
    const clear_metrics *p = &parts[k];
    out->tp += p->tp;
    out->fn += p->fn;
    out->fp += p->fp;
    out->idsw += p->idsw;
    out->mt += p->mt;
    out->pt += p->pt;
    out->ml += p->ml;
    out->frag += p->frag;
    out->frames += p->frames;
    out->motp_sum += p->motp_sum;
  }
}

void clear_combine(const clear_metrics *parts, int n, clear_metrics *out) {
  clear_sum(parts, n, out);
  clear_finalize(out);
}

void clear_class_average(const clear_metrics *parts, int n, clear_metrics *out) {
  clear_sum(parts, n, out);
  // Every float field, MOTP_sum included, is the plain mean over classes (np.mean, n small).
  double acc[14] = {0};
  for (int k = 0; k < n; k++) {
    const clear_metrics *p = &parts[k];
    double v[14] = {p->mota, p->motp, p->moda, p->recall, p->precision, p->mtr, p->ptr,
                    p->mlr,  p->smota, p->f1, p->fp_per_frame, p->motal, p->motp_sum, 0};
    for (int q = 0; q < 13; q++) acc[q] += v[q];
  }
  double d = n > 0 ? n : NAN;
  out->mota = acc[0] / d;
  out->motp = acc[1] / d;
  out->moda = acc[2] / d;
  out->recall = acc[3] / d;
  out->precision = acc[4] / d;
  out->mtr = acc[5] / d;
  out->ptr = acc[6] / d;
  out->mlr = acc[7] / d;
  out->smota = acc[8] / d;
  out->f1 = acc[9] / d;
  out->fp_per_frame = acc[10] / d;
  out->motal = acc[11] / d;
  out->motp_sum = acc[12] / d;
}
