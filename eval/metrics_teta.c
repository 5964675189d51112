// TETA (Li et al., ECCV 2022). TETA = (LocA + AssocA + ClsA) / 3.
//
// What we implement (per video, then combined), with the choices we could not confirm against
// the SysCV `teta` package marked UNSURE:
//  1. Class-agnostic assignment pass: all gt of the video against all predictions that overlap
//     some gt (IoU >= 0.5) in at least one frame; HOTA-style matching (global alignment score x
//     IoU, Hungarian) kept at alpha 0.5 gives, per frame, a gt -> prediction assignment.
//  2. Per class c, the local clusters: in frame t the predictions with IoU >= 0.5 to a gt of class
//     c, minus predictions that step 1 assigned to a gt of another class in that frame. The
//     predictions scored for c are all boxes (every frame) of tracks that were in a cluster of c in
//     any frame; gt = boxes of class c. Predicted classes are ignored here (class-agnostic).
//  3. Localisation and association exactly as HOTA on those gt/predictions, for 20 alphas
//     0.00, 0.05, ..., 0.95 (np.arange(0.0, 0.99, 0.05)); at alpha 0 every assigned pair is a TP,
//     zero overlap included. Loc FP = cluster members of frame t not matched (predictions outside
//     all clusters are never FPs: TAO is not exhaustively labelled). LocA = TP / (TP + FN + FP).
//     AssocA / Re / Pr as HOTA's AssA / AssRe / AssPr.
//  4. Classification at alphas >= 0.5: a matched prediction whose class is c is a Cls TP of c;
//     otherwise a Cls FN of c and a Cls FP of the predicted class (counted across videos and added
//     after sequences are combined). ClsA per alpha = TP / (TP + FN + FP), reported as the mean
//     over alphas 0.5..0.95 (UNSURE: the package may average differently).
//  5. TETA per alpha = (LocA_a + AssocA_a + ClsA) / 3; the reported TETA, LocA, AssocA are means
//     over the 20 alphas (UNSURE: vs. values at alpha 0.5). Classes combine by plain average over
//     classes with any Loc TP/FN/FP (ignore_empty).
//  UNSURE as well: the cluster IoU threshold (0.5, "TETA50"), the use of alpha 0.5 in the
//  assignment pass, and exhaustive mode (BDD100K): every prediction of class c outside the
//  clusters of c is also a Cls FP of c.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/assign.h"
#include "eval/metrics.h"
#include "eval/teta.h"

#define NA TETA_NUM_ALPHA
#define CLUSTER_IOU 0.5

double teta_alpha(int a) { return 0 + a * 0.05; }

double teta_mean(const double *arr) { return np_pairwise_sum(arr, NA, 1) / NA; }

void teta_seq_free(teta_seq *s) {
  if (!s->frames) return;
  for (int t = 0; t < s->num_frames; t++) {
    teta_frame *f = &s->frames[t];
    free(f->gt_ids);
    free(f->tr_ids);
    free(f->gt_cls);
    free(f->tr_cls);
    free(f->sim);
  }
  free(s->frames);
  s->frames = NULL;
}

static double dmax(double x, double lo) { return x > lo ? x : lo; }

static void teta_finalize(teta_metrics *r) {
  for (int a = 0; a < NA; a++) {
    r->locre[a] = r->loc_tp[a] / dmax(r->loc_tp[a] + r->loc_fn[a], 1);
    r->locpr[a] = r->loc_tp[a] / dmax(r->loc_tp[a] + r->loc_fp[a], 1);
    r->loca[a] = r->loc_tp[a] / dmax(r->loc_tp[a] + r->loc_fn[a] + r->loc_fp[a], 1);
  }
  double re = 0, pr = 0, ca = 0;
  for (int a = TETA_CLS_ALPHA0; a < NA; a++) {
    re += r->cls_tp[a] / dmax(r->cls_tp[a] + r->cls_fn[a], 1);
    pr += r->cls_tp[a] / dmax(r->cls_tp[a] + r->cls_fp[a], 1);
    ca += r->cls_tp[a] / dmax(r->cls_tp[a] + r->cls_fn[a] + r->cls_fp[a], 1);
  }
  r->clsre = re / (NA - TETA_CLS_ALPHA0);
  r->clspr = pr / (NA - TETA_CLS_ALPHA0);
  r->clsa = ca / (NA - TETA_CLS_ALPHA0);
  for (int a = 0; a < NA; a++) r->teta[a] = (r->loca[a] + r->assoca[a] + r->clsa) / 3;
}

// Selected gt / prediction boxes of one frame, as column / row indices into the frame.
typedef struct {
  int *g, *p;
  int ng, np;
} sel;

// Relabels int64 ids to 0..n-1 (sorted). ids (n_in) -> out; returns number of unique ids.
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

typedef struct {
  int64_t *v;
  int64_t n, cap;
} i64vec;

static void vec_push(i64vec *v, int64_t x) {
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 64;
    v->v = realloc(v->v, (size_t)v->cap * sizeof(int64_t));
    if (!v->v) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
  v->v[v->n++] = x;
}

static void vec_unique(i64vec *v) {
  if (v->n < 2) return;
  qsort(v->v, (size_t)v->n, sizeof(int64_t), cmp_i64);
  int64_t u = 0;
  for (int64_t i = 0; i < v->n; i++)
    if (u == 0 || v->v[u - 1] != v->v[i]) v->v[u++] = v->v[i];
  v->n = u;
}

static int vec_has(const i64vec *v, int64_t x) {
  return v->n && bsearch(&x, v->v, (size_t)v->n, sizeof(int64_t), cmp_i64) != NULL;
}

static int vec_index(const i64vec *v, int64_t x) {
  const int64_t *p = bsearch(&x, v->v, (size_t)v->n, sizeof(int64_t), cmp_i64);
  masa_assert(p != NULL);
  return (int)(p - v->v);
}

// HOTA-style scoring over a selection: global alignment score, per-frame Hungarian.
// Calls back per frame with the matched pairs (row/col positions within the selection).
typedef struct {
  const teta_seq *s;
  const sel *sl;  // per frame
  i64vec gids, pids;  // unique ids (relabel)
  int ng, np;
  double *gas, *gc, *pc;
} ga_ctx;

static void ga_build(ga_ctx *c) {
  const teta_seq *s = c->s;
  c->ng = (int)c->gids.n;
  c->np = (int)c->pids.n;
  double *pm = callocCheck((size_t)c->ng * c->np + 1, sizeof(double));
  c->gc = callocCheck((size_t)c->ng + 1, sizeof(double));
  c->pc = callocCheck((size_t)c->np + 1, sizeof(double));
  for (int t = 0; t < s->num_frames; t++) {
    const teta_frame *f = &s->frames[t];
    const sel *q = &c->sl[t];
    int n = q->ng, m = q->np;
    if (n > 0 && m > 0) {
      double *sim = mallocCheck((size_t)n * m * sizeof(double));
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) sim[(size_t)i * m + j] = f->sim[(size_t)q->g[i] * f->n_tr + q->p[j]];
      double *colsum = callocCheck((size_t)m, sizeof(double)), *rowsum = mallocCheck((size_t)n * sizeof(double));
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) colsum[j] += sim[(size_t)i * m + j];
      for (int i = 0; i < n; i++) rowsum[i] = np_pairwise_sum(sim + (size_t)i * m, m, 1);
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
          double v = sim[(size_t)i * m + j], den = colsum[j] + rowsum[i] - v;
          int gi = vec_index(&c->gids, f->gt_ids[q->g[i]]), pj = vec_index(&c->pids, f->tr_ids[q->p[j]]);
          pm[(size_t)gi * c->np + pj] += den > 0 + DBL_EPSILON ? v / den : 0;
        }
      free(sim);
      free(colsum);
      free(rowsum);
    }
    for (int i = 0; i < n; i++) c->gc[vec_index(&c->gids, f->gt_ids[q->g[i]])] += 1;
    for (int j = 0; j < m; j++) c->pc[vec_index(&c->pids, f->tr_ids[q->p[j]])] += 1;
  }
  c->gas = mallocCheck((size_t)c->ng * c->np * sizeof(double) + 1);
  for (int g = 0; g < c->ng; g++)
    for (int h = 0; h < c->np; h++) {
      double v = pm[(size_t)g * c->np + h];
      c->gas[(size_t)g * c->np + h] = v / (c->gc[g] + c->pc[h] - v);
    }
  free(pm);
}

// Hungarian of frame t over the selection; rows/cols (k) are selection positions. Returns k.
static int64_t ga_match(const ga_ctx *c, int t, int64_t *rows, int64_t *cols) {
  const teta_frame *f = &c->s->frames[t];
  const sel *q = &c->sl[t];
  int n = q->ng, m = q->np;
  if (n == 0 || m == 0) return 0;
  double *cost = mallocCheck((size_t)n * m * sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      int gi = vec_index(&c->gids, f->gt_ids[q->g[i]]), pj = vec_index(&c->pids, f->tr_ids[q->p[j]]);
      cost[(size_t)i * m + j] = -(c->gas[(size_t)gi * c->np + pj] * f->sim[(size_t)q->g[i] * f->n_tr + q->p[j]]);
    }
  int64_t k = linear_sum_assignment(cost, n, m, rows, cols);
  free(cost);
  return k;
}

static void ga_free(ga_ctx *c) {
  free(c->gids.v);
  free(c->pids.v);
  free(c->gas);
  free(c->gc);
  free(c->pc);
}

static void sel_alloc(sel *q, const teta_frame *f) {
  q->g = mallocCheck(((size_t)f->n_gt + 1) * sizeof(int));
  q->p = mallocCheck(((size_t)f->n_tr + 1) * sizeof(int));
  q->ng = q->np = 0;
}

// Overlap test: prediction j of frame f has IoU >= 0.5 with a gt of class cls (any if cls < 0).
static int overlaps(const teta_frame *f, int j, int cls) {
  for (int i = 0; i < f->n_gt; i++)
    if ((cls < 0 || f->gt_cls[i] == cls) && f->sim[(size_t)i * f->n_tr + j] >= CLUSTER_IOU) return 1;
  return 0;
}

void teta_eval_seq(const teta_seq *s, int num_classes, int exhaustive, teta_metrics *res, double *cls_fp) {
  const int nf = s->num_frames;
  for (int c = 0; c < num_classes; c++) memset(&res[c], 0, sizeof res[c]);
  // --- 1. class-agnostic assignment at alpha 0.5: assigned[t][i] = prediction index or -1.
  int **assigned = callocCheck((size_t)nf + 1, sizeof(int *));
  {
    ga_ctx c = {.s = s};
    c.sl = callocCheck((size_t)nf + 1, sizeof(sel));
    i64vec overlap_ids = {0};
    int64_t n_overlap = 0, n_gt = 0;
    for (int t = 0; t < nf; t++)
      for (int j = 0; j < s->frames[t].n_tr; j++)
        if (overlaps(&s->frames[t], j, -1)) {
          vec_push(&overlap_ids, s->frames[t].tr_ids[j]);
          n_overlap++;
        }
    vec_unique(&overlap_ids);
    sel *sl = (sel *)c.sl;
    for (int t = 0; t < nf; t++) {
      const teta_frame *f = &s->frames[t];
      sel_alloc(&sl[t], f);
      for (int i = 0; i < f->n_gt; i++) {
        sl[t].g[sl[t].ng++] = i;
        vec_push(&c.gids, f->gt_ids[i]);
      }
      for (int j = 0; j < f->n_tr; j++)
        if (vec_has(&overlap_ids, f->tr_ids[j])) {
          sl[t].p[sl[t].np++] = j;
          vec_push(&c.pids, f->tr_ids[j]);
        }
      n_gt += f->n_gt;
      assigned[t] = mallocCheck(((size_t)f->n_gt + 1) * sizeof(int));
      for (int i = 0; i < f->n_gt; i++) assigned[t][i] = -1;
    }
    vec_unique(&c.gids);
    vec_unique(&c.pids);
    if (n_overlap > 0 && n_gt > 0) {
      ga_build(&c);
      for (int t = 0; t < nf; t++) {
        int64_t k = sl[t].ng < sl[t].np ? sl[t].ng : sl[t].np;
        int64_t *rows = mallocCheck(((size_t)k + 1) * sizeof(int64_t)), *cols = mallocCheck(((size_t)k + 1) * sizeof(int64_t));
        k = ga_match(&c, t, rows, cols);
        const teta_frame *f = &s->frames[t];
        for (int64_t q = 0; q < k; q++) {
          int gi = sl[t].g[rows[q]], pj = sl[t].p[cols[q]];
          if (f->sim[(size_t)gi * f->n_tr + pj] >= 0.5 - DBL_EPSILON) assigned[t][gi] = pj;
        }
        free(rows);
        free(cols);
      }
    }
    for (int t = 0; t < nf; t++) {
      free(sl[t].g);
      free(sl[t].p);
    }
    free(sl);
    free(overlap_ids.v);
    ga_free(&c);
  }
  // --- 2-4. per class.
  unsigned char **in_cluster = callocCheck((size_t)nf + 1, sizeof(unsigned char *));
  for (int t = 0; t < nf; t++) in_cluster[t] = mallocCheck((size_t)s->frames[t].n_tr + 1);
  for (int cls = 0; cls < num_classes; cls++) {
    teta_metrics *r = &res[cls];
    i64vec cluster_ids = {0};
    int64_t n_overlap = 0, n_gt = 0;
    for (int t = 0; t < nf; t++) {
      const teta_frame *f = &s->frames[t];
      for (int j = 0; j < f->n_tr; j++) {
        int in = overlaps(f, j, cls);
        // Not if assigned to a gt of another class in this frame.
        for (int i = 0; i < f->n_gt && in; i++)
          if (f->gt_cls[i] != cls && assigned[t][i] == j) in = 0;
        in_cluster[t][j] = (unsigned char)in;
        if (in) {
          vec_push(&cluster_ids, f->tr_ids[j]);
          n_overlap++;
        }
      }
      for (int i = 0; i < f->n_gt; i++) n_gt += f->gt_cls[i] == cls;
    }
    vec_unique(&cluster_ids);
    if (exhaustive && cls_fp) {
      // Predictions of this class outside its clusters (frames with gt of any kind or none).
      for (int t = 0; t < nf; t++) {
        const teta_frame *f = &s->frames[t];
        for (int j = 0; j < f->n_tr; j++)
          if (f->tr_cls[j] == cls && !in_cluster[t][j])
            for (int a = TETA_CLS_ALPHA0; a < NA; a++) cls_fp[(size_t)cls * NA + a] += 1;
      }
    }
    if (n_overlap == 0 || n_gt == 0) {
      for (int a = 0; a < NA; a++) r->loc_fn[a] = (double)n_gt;
      teta_finalize(r);
      free(cluster_ids.v);
      continue;
    }
    ga_ctx c = {.s = s};
    sel *sl = callocCheck((size_t)nf + 1, sizeof(sel));
    c.sl = sl;
    for (int t = 0; t < nf; t++) {
      const teta_frame *f = &s->frames[t];
      sel_alloc(&sl[t], f);
      for (int i = 0; i < f->n_gt; i++)
        if (f->gt_cls[i] == cls) {
          sl[t].g[sl[t].ng++] = i;
          vec_push(&c.gids, f->gt_ids[i]);
        }
      for (int j = 0; j < f->n_tr; j++)
        if (vec_has(&cluster_ids, f->tr_ids[j])) {
          sl[t].p[sl[t].np++] = j;
          vec_push(&c.pids, f->tr_ids[j]);
        }
    }
    vec_unique(&c.gids);
    vec_unique(&c.pids);
    ga_build(&c);
    double *mc = callocCheck((size_t)NA * c.ng * c.np + 1, sizeof(double));
    for (int t = 0; t < nf; t++) {
      const teta_frame *f = &s->frames[t];
      const sel *q = &sl[t];
      if (q->ng == 0) continue;
      int64_t k = q->ng < q->np ? q->ng : q->np;
      int64_t *rows = mallocCheck(((size_t)k + 1) * sizeof(int64_t)), *cols = mallocCheck(((size_t)k + 1) * sizeof(int64_t));
      k = ga_match(&c, t, rows, cols);
      int n_clu = 0;
      for (int j = 0; j < f->n_tr; j++) n_clu += in_cluster[t][j];
      for (int a = 0; a < NA; a++) {
        double alpha = teta_alpha(a);
        int nm = 0, ncls = 0, clu_matched = 0;
        for (int64_t z = 0; z < k; z++) {
          int gi = q->g[rows[z]], pj = q->p[cols[z]];
          if (!(f->sim[(size_t)gi * f->n_tr + pj] >= alpha - DBL_EPSILON)) continue;
          nm++;
          clu_matched += in_cluster[t][pj];
          mc[(size_t)a * c.ng * c.np + (size_t)vec_index(&c.gids, f->gt_ids[gi]) * c.np +
             vec_index(&c.pids, f->tr_ids[pj])] += 1;
          if (a >= TETA_CLS_ALPHA0) {
            if (f->tr_cls[pj] == cls)
              ncls++;
            else if (f->tr_cls[pj] >= 0 && cls_fp)
              cls_fp[(size_t)f->tr_cls[pj] * NA + a] += 1;
          }
        }
        r->loc_tp[a] += nm;
        r->loc_fn[a] += q->ng - nm;
        r->loc_fp[a] += n_clu - clu_matched;
        if (a >= TETA_CLS_ALPHA0) {
          r->cls_tp[a] += ncls;
          r->cls_fn[a] += nm - ncls;
        }
      }
      free(rows);
      free(cols);
    }
    double *tmp = mallocCheck((size_t)c.ng * c.np * sizeof(double) + 1);
    for (int a = 0; a < NA; a++) {
      const double *m = mc + (size_t)a * c.ng * c.np;
      double den = dmax(r->loc_tp[a], 1);
      for (int g = 0; g < c.ng; g++)
        for (int h = 0; h < c.np; h++) {
          double v = m[(size_t)g * c.np + h];
          tmp[(size_t)g * c.np + h] = v * (v / dmax(c.gc[g] + c.pc[h] - v, 1));
        }
      r->assoca[a] = np_pairwise_sum(tmp, (int64_t)c.ng * c.np, 1) / den;
      for (int g = 0; g < c.ng; g++)
        for (int h = 0; h < c.np; h++) {
          double v = m[(size_t)g * c.np + h];
          tmp[(size_t)g * c.np + h] = v * (v / dmax(c.gc[g], 1));
        }
      r->assocre[a] = np_pairwise_sum(tmp, (int64_t)c.ng * c.np, 1) / den;
      for (int g = 0; g < c.ng; g++)
        for (int h = 0; h < c.np; h++) {
          double v = m[(size_t)g * c.np + h];
          tmp[(size_t)g * c.np + h] = v * (v / dmax(c.pc[h], 1));
        }
      r->assocpr[a] = np_pairwise_sum(tmp, (int64_t)c.ng * c.np, 1) / den;
    }
    teta_finalize(r);
    free(tmp);
    free(mc);
    for (int t = 0; t < nf; t++) {
      free(sl[t].g);
      free(sl[t].p);
    }
    free(sl);
    ga_free(&c);
    free(cluster_ids.v);
  }
  for (int t = 0; t < nf; t++) {
    free(assigned[t]);
    free(in_cluster[t]);
  }
  free(assigned);
  free(in_cluster);
}

void teta_combine(const teta_metrics *parts, int n, const double *cls_fp, teta_metrics *out) {
  memset(out, 0, sizeof *out);
  for (int a = 0; a < NA; a++) {
    double re = 0, pr = 0, as = 0;
    for (int k = 0; k < n; k++) {
      const teta_metrics *p = &parts[k];
      out->loc_tp[a] += p->loc_tp[a];
      out->loc_fn[a] += p->loc_fn[a];
      out->loc_fp[a] += p->loc_fp[a];
      out->cls_tp[a] += p->cls_tp[a];
      out->cls_fn[a] += p->cls_fn[a];
      out->cls_fp[a] += p->cls_fp[a];
      re += p->assocre[a] * p->loc_tp[a];
      pr += p->assocpr[a] * p->loc_tp[a];
      as += p->assoca[a] * p->loc_tp[a];
    }
    out->assocre[a] = re / dmax(out->loc_tp[a], 1);
    out->assocpr[a] = pr / dmax(out->loc_tp[a], 1);
    out->assoca[a] = as / dmax(out->loc_tp[a], 1);
    if (cls_fp) out->cls_fp[a] += cls_fp[a];
  }
  teta_finalize(out);
}

void teta_class_average(const teta_metrics *parts, int n, int ignore_empty, teta_metrics *out) {
  memset(out, 0, sizeof *out);
  int used = 0;
  for (int k = 0; k < n; k++) {
    const teta_metrics *p = &parts[k];
    int empty = 1;
    for (int a = 0; a < NA; a++)
      if (p->loc_tp[a] + p->loc_fn[a] + p->loc_fp[a] > 0 + DBL_EPSILON) empty = 0;
    if (ignore_empty && empty) continue;
    for (int a = 0; a < NA; a++) {
      out->loc_tp[a] += p->loc_tp[a];
      out->loc_fn[a] += p->loc_fn[a];
      out->loc_fp[a] += p->loc_fp[a];
      out->cls_tp[a] += p->cls_tp[a];
      out->cls_fn[a] += p->cls_fn[a];
      out->cls_fp[a] += p->cls_fp[a];
    }
    used++;
    for (int a = 0; a < NA; a++) {
      out->loca[a] += p->loca[a];
      out->locre[a] += p->locre[a];
      out->locpr[a] += p->locpr[a];
      out->assoca[a] += p->assoca[a];
      out->assocre[a] += p->assocre[a];
      out->assocpr[a] += p->assocpr[a];
      out->teta[a] += p->teta[a];
    }
    out->clsa += p->clsa;
    out->clsre += p->clsre;
    out->clspr += p->clspr;
  }
  double d = used > 0 ? used : NAN;
  for (int a = 0; a < NA; a++) {
    out->loca[a] /= d;
    out->locre[a] /= d;
    out->locpr[a] /= d;
    out->assoca[a] /= d;
    out->assocre[a] /= d;
    out->assocpr[a] /= d;
    out->teta[a] /= d;
  }
  out->clsa /= d;
  out->clsre /= d;
  out->clspr /= d;
}
