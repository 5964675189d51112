// Benchmark evaluation (see evaluate.h). Preprocessing mirrors TrackEval's dataset classes:
//   MOT:  trackeval/datasets/mot_challenge_2d_box.py get_preprocessed_seq_data
//   BDD:  trackeval/datasets/bdd100k.py get_preprocessed_seq_data
//   TAO:  TETA's own class-agnostic clusters (metrics_teta.c)
// Detections keep their file order within a frame: the Hungarian's tie-breaking depends on it.
#include "eval/evaluate.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/assign.h"
#include "eval/bdd_format.h"
#include "eval/mot_format.h"
#include "eval/tao_format.h"

// ---------------------------------------------------------------------------------------------
// Shared helpers

typedef struct {
  int frame;  // 0-based timestep
  int64_t id;
  int cls;
  double box[4];  // x0, y0, x1, y1
  int keep;
} det;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

// Sorted unique ids of kept dets; returns count, *out malloc'd.
static int64_t unique_ids(const det *d, int64_t n, int64_t **out) {
  int64_t *ids = mallocCheck(((size_t)n + 1) * sizeof(int64_t));
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++)
    if (d[i].keep) ids[k++] = d[i].id;
  qsort(ids, (size_t)k, sizeof(int64_t), cmp_i64);
  int64_t u = 0;
  for (int64_t i = 0; i < k; i++)
    if (u == 0 || ids[u - 1] != ids[i]) ids[u++] = ids[i];
  *out = ids;
  return u;
}

static int id_index(const int64_t *ids, int64_t n, int64_t id) {
  const int64_t *p = bsearch(&id, ids, (size_t)n, sizeof(int64_t), cmp_i64);
  masa_assert(p != NULL);
  return (int)(p - ids);
}

// Per-frame index lists in file order: idx[off[t] .. off[t+1]).
static void group_by_frame(const det *d, int64_t n, int num_frames, int64_t **off_out, int64_t **idx_out) {
  int64_t *off = callocCheck((size_t)num_frames + 1, sizeof(int64_t));
  int64_t *idx = mallocCheck(((size_t)n + 1) * sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) off[d[i].frame + 1]++;
  for (int t = 0; t < num_frames; t++) off[t + 1] += off[t];
  int64_t *pos = mallocCheck(((size_t)num_frames + 1) * sizeof(int64_t));
  memcpy(pos, off, (size_t)num_frames * sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) idx[pos[d[i].frame]++] = i;
  free(pos);
  *off_out = off;
  *idx_out = idx;
}

// Ids must be unique per frame (TrackEval _check_unique_ids).
static int check_unique_ids(const det *d, const int64_t *off, const int64_t *idx, int num_frames,
                            const char *what, const char *seq) {
  for (int t = 0; t < num_frames; t++)
    for (int64_t a = off[t]; a < off[t + 1]; a++)
      for (int64_t b = a + 1; b < off[t + 1]; b++)
        if (d[idx[a]].id == d[idx[b]].id)
          return masa_error("%s: %s has id %lld more than once in frame %d", seq, what,
                            (long long)d[idx[a]].id, t + 1);
  return MASA_OK;
}

// Builds the prepared sequence from the kept dets, relabelling ids to 0..n-1 in sorted order.
static void build_eval_seq(const det *gt, int64_t ngt, const det *tr, int64_t ntr, int num_frames, eval_seq *s) {
  memset(s, 0, sizeof *s);
  s->num_frames = num_frames;
  s->frames = callocCheck((size_t)num_frames + 1, sizeof(eval_frame));
  int64_t *gids, *tids;
  int64_t ng = unique_ids(gt, ngt, &gids), nt = unique_ids(tr, ntr, &tids);
  s->num_gt_ids = (int)ng;
  s->num_tr_ids = (int)nt;
  int64_t *goff, *gidx, *toff, *tidx;
  group_by_frame(gt, ngt, num_frames, &goff, &gidx);
  group_by_frame(tr, ntr, num_frames, &toff, &tidx);
  for (int t = 0; t < num_frames; t++) {
    eval_frame *f = &s->frames[t];
    int n = 0, m = 0;
    for (int64_t a = goff[t]; a < goff[t + 1]; a++) n += gt[gidx[a]].keep;
    for (int64_t a = toff[t]; a < toff[t + 1]; a++) m += tr[tidx[a]].keep;
    f->n_gt = n;
    f->n_tr = m;
    f->gt_ids = mallocCheck(((size_t)n + 1) * sizeof(int));
    f->tr_ids = mallocCheck(((size_t)m + 1) * sizeof(int));
    f->sim = mallocCheck(((size_t)n * m + 1) * sizeof(double));
    const det **gk = mallocCheck(((size_t)n + 1) * sizeof(det *)), **tk = mallocCheck(((size_t)m + 1) * sizeof(det *));
    n = m = 0;
    for (int64_t a = goff[t]; a < goff[t + 1]; a++)
      if (gt[gidx[a]].keep) gk[n++] = &gt[gidx[a]];
    for (int64_t a = toff[t]; a < toff[t + 1]; a++)
      if (tr[tidx[a]].keep) tk[m++] = &tr[tidx[a]];
    for (int i = 0; i < n; i++) f->gt_ids[i] = id_index(gids, ng, gk[i]->id);
    for (int j = 0; j < m; j++) f->tr_ids[j] = id_index(tids, nt, tk[j]->id);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < m; j++) f->sim[(size_t)i * m + j] = eval_box_iou(gk[i]->box, tk[j]->box, 0);
    s->num_gt_dets += n;
    s->num_tr_dets += m;
    free(gk);
    free(tk);
  }
  free(gids);
  free(tids);
  free(goff);
  free(gidx);
  free(toff);
  free(tidx);
}

// Hungarian on IoU with pairs below 0.5 zeroed, as TrackEval's preprocessing matches gt and
// predictions before removing distractor matches / crowd-region predictions. sim (n, m).
// matched_col_of_row[i] = j or -1.
static void preproc_match(const double *sim, int n, int m, int *match_of_row) {
  for (int i = 0; i < n; i++) match_of_row[i] = -1;
  if (n == 0 || m == 0) return;
  double *cost = mallocCheck((size_t)n * m * sizeof(double));
  for (size_t q = 0; q < (size_t)n * m; q++) cost[q] = -(sim[q] < 0.5 - DBL_EPSILON ? 0 : sim[q]);
  int64_t k = n < m ? n : m;
  int64_t *rows = mallocCheck((size_t)k * sizeof(int64_t)), *cols = mallocCheck((size_t)k * sizeof(int64_t));
  linear_sum_assignment(cost, n, m, rows, cols);
  for (int64_t q = 0; q < k; q++)
    if (-cost[rows[q] * m + cols[q]] > 0 + DBL_EPSILON) match_of_row[rows[q]] = (int)cols[q];
  free(cost);
  free(rows);
  free(cols);
}

static void add_row(eval_row **rows, int *n, const char *name) {
  *rows = realloc(*rows, (size_t)(*n + 1) * sizeof(eval_row));
  if (!*rows) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  memset(&(*rows)[*n], 0, sizeof(eval_row));
  snprintf((*rows)[*n].name, sizeof(*rows)[*n].name, "%s", name);
  (*n)++;
}

static void score_seq(const eval_seq *s, const eval_options *opt, eval_row *row) {
  row->num_gt_dets = s->num_gt_dets;
  row->num_tr_dets = s->num_tr_dets;
  if (opt->metrics & EVAL_CLEAR) clear_eval(s, opt->clear_conv, 0.5, &row->clear);
  if (opt->metrics & EVAL_IDENTITY) identity_eval(s, opt->clear_conv, 0.5, &row->identity);
  if (opt->metrics & EVAL_HOTA) hota_eval(s, &row->hota);
}

// Detection-averaged (summed) combination of rows; TrackEval's combine_sequences and
// combine_classes_det_averaged are the same computation.
static void combine_rows(const eval_row *rows, int n, const eval_options *opt, eval_row *out) {
  clear_metrics *c = mallocCheck(((size_t)n + 1) * sizeof(clear_metrics));
  identity_metrics *id = mallocCheck(((size_t)n + 1) * sizeof(identity_metrics));
  hota_metrics *h = mallocCheck(((size_t)n + 1) * sizeof(hota_metrics));
  for (int k = 0; k < n; k++) {
    c[k] = rows[k].clear;
    id[k] = rows[k].identity;
    h[k] = rows[k].hota;
    out->num_gt_dets += rows[k].num_gt_dets;
    out->num_tr_dets += rows[k].num_tr_dets;
  }
  if (opt->metrics & EVAL_CLEAR) clear_combine(c, n, &out->clear);
  if (opt->metrics & EVAL_IDENTITY) identity_combine(id, n, &out->identity);
  if (opt->metrics & EVAL_HOTA) hota_combine(h, n, &out->hota);
  free(c);
  free(id);
  free(h);
}

static void class_average_rows(const eval_row *rows, int n, const eval_options *opt, eval_row *out) {
  clear_metrics *c = mallocCheck(((size_t)n + 1) * sizeof(clear_metrics));
  identity_metrics *id = mallocCheck(((size_t)n + 1) * sizeof(identity_metrics));
  hota_metrics *h = mallocCheck(((size_t)n + 1) * sizeof(hota_metrics));
  for (int k = 0; k < n; k++) {
    c[k] = rows[k].clear;
    id[k] = rows[k].identity;
    h[k] = rows[k].hota;
    out->num_gt_dets += rows[k].num_gt_dets;
    out->num_tr_dets += rows[k].num_tr_dets;
  }
  if (opt->metrics & EVAL_CLEAR) clear_class_average(c, n, &out->clear);
  if (opt->metrics & EVAL_IDENTITY) identity_class_average(id, n, &out->identity);
  if (opt->metrics & EVAL_HOTA) hota_class_average(h, n, &out->hota);
  free(c);
  free(id);
  free(h);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Names in dir (sorted) that are directories holding rel (or, when rel ends in ".json" and is
// NULL-prefixed, files with that suffix).
static int list_names(const char *dir, const char *need_rel, const char *suffix, char ***out, int *n_out) {
  DIR *d = opendir(dir);
  if (!d) return masa_error("%s: cannot open directory", dir);
  char **names = NULL;
  int n = 0;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char name[1024];
    if (suffix) {
      size_t l = strlen(e->d_name), sl = strlen(suffix);
      if (l <= sl || strcmp(e->d_name + l - sl, suffix)) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (!is_file(path)) continue;
      snprintf(name, sizeof name, "%.*s", (int)(l - sl), e->d_name);
    } else {
      snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, need_rel);
      if (!is_file(path)) continue;
      snprintf(name, sizeof name, "%s", e->d_name);
    }
    names = realloc(names, (size_t)(n + 1) * sizeof(char *));
    if (!names) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
    names[n++] = strdup(name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof(char *), cmp_str);
  *out = names;
  *n_out = n;
  return MASA_OK;
}

static void free_names(char **names, int n) {
  for (int k = 0; k < n; k++) free(names[k]);
  free(names);
}

// ---------------------------------------------------------------------------------------------
// MOTChallenge

static int mot_dets(const mot_rows *r, int is_gt, int num_frames, const char *path, det **out) {
  det *d = mallocCheck(((size_t)r->n + 1) * sizeof(det));
  for (int64_t k = 0; k < r->n; k++) {
    const double *v = r->rows[k].v;
    double fr = trunc(v[0]);
    if (!(fr >= 1 && fr <= num_frames)) {
      free(d);
      return masa_error("%s: row %lld: frame %g outside the sequence's 1..%d", path, (long long)k + 1, v[0],
                        num_frames);
    }
    d[k].frame = (int)fr - 1;
    d[k].id = (int64_t)v[1];
    // xywh -> x0y0x1y1 exactly as TrackEval converts (x1 = x + w).
    d[k].box[0] = v[2];
    d[k].box[1] = v[3];
    d[k].box[2] = v[2] + v[4];
    d[k].box[3] = v[3] + v[5];
    d[k].keep = 1;
    if (is_gt) {
      if (r->rows[k].ncols < 8) {
        free(d);
        return masa_error("%s: row %lld: ground truth needs at least 8 fields (frame, id, box, flag, class)",
                          path, (long long)k + 1);
      }
      d[k].cls = (int)(int64_t)v[7];
      // zero_marked = int(column 7); the flag's integer part decides.
      d[k].keep = (int64_t)v[6] != 0;
    } else {
      d[k].cls = r->rows[k].ncols >= 8 ? (int)(int64_t)v[7] : 1;
    }
  }
  *out = d;
  return MASA_OK;
}

static int mot_prepare(const char *seq, const mot_rows *gtr, const mot_rows *trr, int num_frames, mot_variant var,
                       const char *gt_path, const char *tr_path, eval_seq *s) {
  det *gt = NULL, *tr = NULL;
  if (mot_dets(gtr, 1, num_frames, gt_path, &gt) != MASA_OK) return MASA_ERR;
  if (mot_dets(trr, 0, num_frames, tr_path, &tr) != MASA_OK) {
    free(gt);
    return MASA_ERR;
  }
  int64_t *goff, *gidx, *toff, *tidx;
  group_by_frame(gt, gtr->n, num_frames, &goff, &gidx);
  group_by_frame(tr, trr->n, num_frames, &toff, &tidx);
  int rc = check_unique_ids(gt, goff, gidx, num_frames, "ground truth", seq);
  if (rc == MASA_OK) rc = check_unique_ids(tr, toff, tidx, num_frames, "results", seq);
  // Distractors (mot_challenge_2d_box.py): person_on_vehicle 2, static_person 7, distractor 8,
  // reflection 12; MOT20 adds non_mot_vehicle 6.
  for (int t = 0; t < num_frames && rc == MASA_OK; t++) {
    int n = (int)(goff[t + 1] - goff[t]), m = (int)(toff[t + 1] - toff[t]);
    for (int j = 0; j < m; j++)
      if (tr[tidx[toff[t] + j]].cls > 1) {
        rc = masa_error("%s: frame %d: result class %d; only pedestrians (class 1 or -1) can be evaluated", tr_path,
                        t + 1, tr[tidx[toff[t] + j]].cls);
        break;
      }
    if (rc != MASA_OK || var == MOT_VARIANT_15 || n == 0 || m == 0) continue;
    for (int i = 0; i < n; i++) {
      int c = gt[gidx[goff[t] + i]].cls;
      if (c < 1 || c > 13) {
        rc = masa_error("%s: frame %d: ground-truth class %d is not a MOTChallenge class (1..13); use --mot-variant "
                        "MOT15 for files without classes", gt_path, t + 1, c);
        break;
      }
    }
    if (rc != MASA_OK) break;
    double *sim = mallocCheck((size_t)n * m * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < m; j++)
        sim[(size_t)i * m + j] = eval_box_iou(gt[gidx[goff[t] + i]].box, tr[tidx[toff[t] + j]].box, 0);
    int *match = mallocCheck((size_t)n * sizeof(int));
    preproc_match(sim, n, m, match);
    for (int i = 0; i < n; i++) {
      if (match[i] < 0) continue;
      int c = gt[gidx[goff[t] + i]].cls;
      if (c == 2 || c == 7 || c == 8 || c == 12 || (var == MOT_VARIANT_20 && c == 6))
        tr[tidx[toff[t] + match[i]]].keep = 0;
    }
    free(sim);
    free(match);
  }
  if (rc == MASA_OK) {
    if (var != MOT_VARIANT_15)
      for (int64_t k = 0; k < gtr->n; k++) gt[k].keep = gt[k].keep && gt[k].cls == 1;
    build_eval_seq(gt, gtr->n, tr, trr->n, num_frames, s);
  }
  free(goff);
  free(gidx);
  free(toff);
  free(tidx);
  free(gt);
  free(tr);
  return rc;
}

static int max_frame(const mot_rows *r) {
  double mx = 0;
  for (int64_t k = 0; k < r->n; k++)
    if (r->rows[k].v[0] > mx) mx = r->rows[k].v[0];
  return (int)mx;
}

static int evaluate_mot(const eval_options *opt, eval_report *rep) {
  char **seqs;
  int nseq;
  if (list_names(opt->gt, "gt/gt.txt", NULL, &seqs, &nseq) != MASA_OK) return MASA_ERR;
  if (nseq == 0) return masa_error("%s: no sequences (expected SEQ/gt/gt.txt under it)", opt->gt);
  int rc = MASA_OK;
  for (int k = 0; k < nseq && rc == MASA_OK; k++) {
    char gpath[4096], ipath[4096], rpath[4096];
    snprintf(gpath, sizeof gpath, "%s/%s/gt/gt.txt", opt->gt, seqs[k]);
    snprintf(ipath, sizeof ipath, "%s/%s/seqinfo.ini", opt->gt, seqs[k]);
    snprintf(rpath, sizeof rpath, "%s/%s.txt", opt->results, seqs[k]);
    if (!is_file(rpath)) {
      rc = masa_error("%s: results file missing for sequence %s", rpath, seqs[k]);
      break;
    }
    mot_rows gtr, trr;
    if (mot_read(gpath, &gtr) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    if (mot_read(rpath, &trr) != MASA_OK) {
      mot_rows_free(&gtr);
      rc = MASA_ERR;
      break;
    }
    int num_frames;
    if (is_file(ipath)) {
      mot_seqinfo info;
      if (mot_read_seqinfo(ipath, &info) != MASA_OK) {
        mot_rows_free(&gtr);
        mot_rows_free(&trr);
        rc = MASA_ERR;
        break;
      }
      num_frames = info.seq_length;
    } else {
      int a = max_frame(&gtr), b = max_frame(&trr);
      num_frames = a > b ? a : b;
      log_info("%s: no seqinfo.ini, sequence length taken as the last frame in the files (%d)", seqs[k],
               num_frames);
    }
    eval_seq s;
    rc = mot_prepare(seqs[k], &gtr, &trr, num_frames, opt->mot, gpath, rpath, &s);
    mot_rows_free(&gtr);
    mot_rows_free(&trr);
    if (rc != MASA_OK) break;
    add_row(&rep->seqs, &rep->n_seqs, seqs[k]);
    score_seq(&s, opt, &rep->seqs[rep->n_seqs - 1]);
    eval_seq_free(&s);
  }
  free_names(seqs, nseq);
  if (rc != MASA_OK) return rc;
  snprintf(rep->combined.name, sizeof rep->combined.name, "COMBINED");
  combine_rows(rep->seqs, rep->n_seqs, opt, &rep->combined);
  return MASA_OK;
}

// ---------------------------------------------------------------------------------------------
// BDD100K (trackeval/datasets/bdd100k.py): per class c, gt of class c and predictions of class
// c; predictions left unmatched by a 0.5-IoU Hungarian whose intersection over their own area
// with an ignore region exceeds 0.5 are removed. Ignore regions: gt labels of 'other person',
// 'trailer', 'other vehicle' or with the crowd attribute. Sequences combine by summing; classes
// by class average (the m-metrics) and detection average.

static const char *const bdd_classes[BDD_NUM_CLASSES] = {"pedestrian", "rider", "car", "truck",
                                                         "bus", "train", "motorcycle", "bicycle"};

static int bdd_prepare(const bdd_video *gtv, const bdd_video *trv, int cls, eval_seq *s) {
  int nf = gtv->num_frames;
  int64_t ngt = 0, ntr = 0;
  for (int t = 0; t < nf; t++) {
    ngt += gtv->frames[t].n;
    if (t < trv->num_frames) ntr += trv->frames[t].n;
  }
  det *gt = mallocCheck(((size_t)ngt + 1) * sizeof(det)), *tr = mallocCheck(((size_t)ntr + 1) * sizeof(det));
  int64_t a = 0, b = 0;
  for (int t = 0; t < nf; t++) {
    const bdd_frame *gf = &gtv->frames[t];
    for (int k = 0; k < gf->n; k++) {
      const bdd_label *l = &gf->labels[k];
      if (l->ignore || l->cls != cls) continue;
      det *d = &gt[a++];
      d->frame = t;
      d->id = l->id;
      d->cls = l->cls;
      memcpy(d->box, l->box, sizeof d->box);
      d->keep = 1;
    }
    if (t >= trv->num_frames) continue;
    const bdd_frame *tf = &trv->frames[t];
    // Predictions of this class, unmatched ones inside ignore regions removed.
    int m = 0, n = 0, ni = 0;
    for (int k = 0; k < tf->n; k++) m += tf->labels[k].cls == cls;
    for (int k = 0; k < gf->n; k++) {
      n += !gf->labels[k].ignore && gf->labels[k].cls == cls;
      ni += gf->labels[k].ignore;
    }
    const bdd_label **tl = mallocCheck(((size_t)m + 1) * sizeof(*tl)), **gl = mallocCheck(((size_t)n + 1) * sizeof(*gl));
    m = n = 0;
    for (int k = 0; k < tf->n; k++)
      if (tf->labels[k].cls == cls) tl[m++] = &tf->labels[k];
    for (int k = 0; k < gf->n; k++)
      if (!gf->labels[k].ignore && gf->labels[k].cls == cls) gl[n++] = &gf->labels[k];
    unsigned char *matched = callocCheck((size_t)m + 1, 1);
    if (n > 0 && m > 0) {
      double *sim = mallocCheck((size_t)n * m * sizeof(double));
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) sim[(size_t)i * m + j] = eval_box_iou(gl[i]->box, tl[j]->box, 0);
      int *match = mallocCheck((size_t)n * sizeof(int));
      preproc_match(sim, n, m, match);
      for (int i = 0; i < n; i++)
        if (match[i] >= 0) matched[match[i]] = 1;
      free(sim);
      free(match);
    }
    for (int j = 0; j < m; j++) {
      int keep = 1;
      if (!matched[j] && ni > 0)
        for (int k = 0; k < gf->n && keep; k++)
          if (gf->labels[k].ignore && eval_box_iou(tl[j]->box, gf->labels[k].box, 1) > 0.5 + DBL_EPSILON) keep = 0;
      det *d = &tr[b++];
      d->frame = t;
      d->id = tl[j]->id;
      d->cls = cls;
      memcpy(d->box, tl[j]->box, sizeof d->box);
      d->keep = keep;
    }
    free(tl);
    free(gl);
    free(matched);
  }
  int64_t *goff, *gidx, *toff, *tidx;
  group_by_frame(gt, a, nf, &goff, &gidx);
  group_by_frame(tr, b, nf, &toff, &tidx);
  int rc = check_unique_ids(gt, goff, gidx, nf, "ground truth", gtv->name);
  if (rc == MASA_OK) rc = check_unique_ids(tr, toff, tidx, nf, "results", gtv->name);
  if (rc == MASA_OK) build_eval_seq(gt, a, tr, b, nf, s);
  free(goff);
  free(gidx);
  free(toff);
  free(tidx);
  free(gt);
  free(tr);
  return rc;
}

// One BDD100K video as TETA input: evaluated classes only (ignore regions play no part in TETA's
// clusters; UNSURE whether the teta package's BDD100K reader drops them the same way).
static void bdd_build_teta_seq(const bdd_video *gtv, const bdd_video *trv, teta_seq *s) {
  s->num_frames = gtv->num_frames;
  s->frames = callocCheck((size_t)s->num_frames + 1, sizeof(teta_frame));
  for (int t = 0; t < s->num_frames; t++) {
    const bdd_frame *gf = &gtv->frames[t];
    const bdd_frame *tf = t < trv->num_frames ? &trv->frames[t] : NULL;
    teta_frame *f = &s->frames[t];
    int n = 0, m = tf ? tf->n : 0;
    for (int k = 0; k < gf->n; k++) n += !gf->labels[k].ignore;
    f->gt_ids = mallocCheck(((size_t)n + 1) * sizeof(int64_t));
    f->gt_cls = mallocCheck(((size_t)n + 1) * sizeof(int));
    f->tr_ids = mallocCheck(((size_t)m + 1) * sizeof(int64_t));
    f->tr_cls = mallocCheck(((size_t)m + 1) * sizeof(int));
    f->sim = mallocCheck(((size_t)n * m + 1) * sizeof(double));
    const bdd_label **gl = mallocCheck(((size_t)n + 1) * sizeof(*gl));
    for (int k = 0; k < gf->n; k++)
      if (!gf->labels[k].ignore) {
        gl[f->n_gt] = &gf->labels[k];
        f->gt_ids[f->n_gt] = gf->labels[k].id;
        f->gt_cls[f->n_gt] = gf->labels[k].cls;
        f->n_gt++;
      }
    for (int j = 0; j < m; j++) {
      f->tr_ids[j] = tf->labels[j].id;
      f->tr_cls[j] = tf->labels[j].cls;
    }
    f->n_tr = m;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < m; j++) f->sim[(size_t)i * m + j] = eval_box_iou(gl[i]->box, tf->labels[j].box, 0);
    free(gl);
  }
}

static int evaluate_bdd(const eval_options *opt, eval_report *rep) {
  char **vids;
  int nv;
  if (list_names(opt->gt, NULL, ".json", &vids, &nv) != MASA_OK) return MASA_ERR;
  if (nv == 0) return masa_error("%s: no videos (expected VIDEO.json files)", opt->gt);
  rep->has_classes = 1;
  eval_row *per = callocCheck((size_t)nv * BDD_NUM_CLASSES, sizeof(eval_row));  // [video][class]
  teta_metrics *teta_per = callocCheck((size_t)nv * BDD_NUM_CLASSES, sizeof(teta_metrics));
  double *cls_fp = callocCheck((size_t)BDD_NUM_CLASSES * TETA_NUM_ALPHA, sizeof(double));
  int rc = MASA_OK;
  for (int v = 0; v < nv && rc == MASA_OK; v++) {
    char gpath[4096], rpath[4096];
    snprintf(gpath, sizeof gpath, "%s/%s.json", opt->gt, vids[v]);
    snprintf(rpath, sizeof rpath, "%s/%s.json", opt->results, vids[v]);
    bdd_video gtv, trv;
    if (bdd_read_video(gpath, 1, &gtv) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    if (!is_file(rpath)) {
      log_warn("%s: no results for video %s: scored as empty", rpath, vids[v]);
      memset(&trv, 0, sizeof trv);
    } else if (bdd_read_video(rpath, 0, &trv) != MASA_OK) {
      bdd_video_free(&gtv);
      rc = MASA_ERR;
      break;
    } else if (bdd_align_frames(&gtv, &trv, rpath) != MASA_OK) {
      bdd_video_free(&gtv);
      bdd_video_free(&trv);
      rc = MASA_ERR;
      break;
    }
    for (int c = 0; c < BDD_NUM_CLASSES && rc == MASA_OK; c++) {
      eval_seq s;
      rc = bdd_prepare(&gtv, &trv, c, &s);
      if (rc != MASA_OK) break;
      eval_row *row = &per[(size_t)v * BDD_NUM_CLASSES + c];
      snprintf(row->name, sizeof row->name, "%s/%s", vids[v], bdd_classes[c]);
      score_seq(&s, opt, row);
      eval_seq_free(&s);
    }
    if (rc == MASA_OK && (opt->metrics & EVAL_TETA)) {
      // BDD100K is exhaustively labelled: predictions of a class outside its clusters are
      // classification FPs (UNSURE, see metrics_teta.c).
      teta_seq ts;
      bdd_build_teta_seq(&gtv, &trv, &ts);
      teta_eval_seq(&ts, BDD_NUM_CLASSES, 1, &teta_per[(size_t)v * BDD_NUM_CLASSES], cls_fp);
      teta_seq_free(&ts);
    }
    bdd_video_free(&gtv);
    bdd_video_free(&trv);
  }
  if (rc == MASA_OK) {
    // Per class over videos, then class average (m-metrics) and detection average.
    eval_row *tmp = mallocCheck((size_t)nv * sizeof(eval_row));
    for (int c = 0; c < BDD_NUM_CLASSES; c++) {
      for (int v = 0; v < nv; v++) tmp[v] = per[(size_t)v * BDD_NUM_CLASSES + c];
      add_row(&rep->classes, &rep->n_classes, bdd_classes[c]);
      combine_rows(tmp, nv, opt, &rep->classes[c]);
    }
    free(tmp);
    snprintf(rep->class_avg.name, sizeof rep->class_avg.name, "CLASS_AVG");
    class_average_rows(rep->classes, rep->n_classes, opt, &rep->class_avg);
    snprintf(rep->combined.name, sizeof rep->combined.name, "COMBINED");
    combine_rows(rep->classes, rep->n_classes, opt, &rep->combined);
    for (int v = 0; v < nv; v++) {
      add_row(&rep->seqs, &rep->n_seqs, vids[v]);
      combine_rows(&per[(size_t)v * BDD_NUM_CLASSES], BDD_NUM_CLASSES, opt, &rep->seqs[v]);
    }
    if (opt->metrics & EVAL_TETA) {
      teta_metrics *tt = mallocCheck(((size_t)nv + BDD_NUM_CLASSES + 1) * sizeof(teta_metrics));
      teta_metrics cls_res[BDD_NUM_CLASSES];
      for (int c = 0; c < BDD_NUM_CLASSES; c++) {
        for (int v = 0; v < nv; v++) tt[v] = teta_per[(size_t)v * BDD_NUM_CLASSES + c];
        teta_combine(tt, nv, cls_fp + (size_t)c * TETA_NUM_ALPHA, &cls_res[c]);
        rep->classes[c].teta = cls_res[c];
      }
      teta_class_average(cls_res, BDD_NUM_CLASSES, 1, &rep->class_avg.teta);
      teta_combine(cls_res, BDD_NUM_CLASSES, NULL, &rep->combined.teta);
      for (int v = 0; v < nv; v++) {
        for (int c = 0; c < BDD_NUM_CLASSES; c++) teta_combine(&teta_per[(size_t)v * BDD_NUM_CLASSES + c], 1, NULL, &tt[c]);
        teta_class_average(tt, BDD_NUM_CLASSES, 1, &rep->seqs[v].teta);
      }
      free(tt);
    }
  }
  free(per);
  free(teta_per);
  free(cls_fp);
  free_names(vids, nv);
  return rc;
}

// ---------------------------------------------------------------------------------------------
// TAO: TETA per class over all videos, class-averaged over classes with any gt/cluster activity.

static int evaluate_tao(const eval_options *opt, eval_report *rep) {
  if (opt->metrics & ~EVAL_TETA)
    return masa_error("tao: only the teta metric is implemented for TAO (got --metrics with clear/identity/hota)");
  tao_dataset gt;
  if (tao_read_gt(opt->gt, &gt) != MASA_OK) return MASA_ERR;
  tao_results res;
  if (tao_read_results(opt->results, &gt, &res) != MASA_OK) {
    tao_dataset_free(&gt);
    return MASA_ERR;
  }
  if (res.dropped)
    log_warn("%s: %lld results are on images that are not in %s: ignored", opt->results, (long long)res.dropped,
             opt->gt);
  if (opt->track_class_vote) tao_results_vote_track_class(&res, &gt);
  rep->has_classes = 1;
  int nc = gt.num_eval_classes;
  teta_metrics *per = callocCheck((size_t)gt.num_videos * nc + 1, sizeof(teta_metrics));
  double *cls_fp = callocCheck((size_t)nc * TETA_NUM_ALPHA + 1, sizeof(double));
  for (int v = 0; v < gt.num_videos; v++) {
    teta_seq s;
    tao_build_teta_seq(&gt, &res, v, &s);
    teta_eval_seq(&s, nc, 0, &per[(size_t)v * nc], cls_fp);
    teta_seq_free(&s);
    add_row(&rep->seqs, &rep->n_seqs, gt.videos[v].name);
  }
  teta_metrics *tmp = mallocCheck(((size_t)gt.num_videos + 1) * sizeof(teta_metrics));
  teta_metrics *cls_res = mallocCheck(((size_t)nc + 1) * sizeof(teta_metrics));
  for (int c = 0; c < nc; c++) {
    for (int v = 0; v < gt.num_videos; v++) tmp[v] = per[(size_t)v * nc + c];
    teta_combine(tmp, gt.num_videos, cls_fp + (size_t)c * TETA_NUM_ALPHA, &cls_res[c]);
    add_row(&rep->classes, &rep->n_classes, gt.eval_class_names[c]);
    rep->classes[c].teta = cls_res[c];
  }
  // Per video: the class average of that video alone (for the table only).
  for (int v = 0; v < gt.num_videos; v++) {
    for (int c = 0; c < nc; c++) {
      teta_combine(&per[(size_t)v * nc + c], 1, NULL, &tmp[0]);
      cls_res[c] = tmp[0];
    }
    teta_class_average(cls_res, nc, 1, &rep->seqs[v].teta);
  }
  for (int c = 0; c < nc; c++) cls_res[c] = rep->classes[c].teta;
  snprintf(rep->class_avg.name, sizeof rep->class_avg.name, "CLASS_AVG");
  teta_class_average(cls_res, nc, 1, &rep->class_avg.teta);
  rep->combined = rep->class_avg;
  snprintf(rep->combined.name, sizeof rep->combined.name, "COMBINED");
  free(per);
  free(cls_fp);
  free(tmp);
  free(cls_res);
  tao_results_free(&res);
  tao_dataset_free(&gt);
  return MASA_OK;
}

// ---------------------------------------------------------------------------------------------

int evaluate_benchmark(const eval_options *opt, eval_report *rep) {
  memset(rep, 0, sizeof *rep);
  rep->benchmark = opt->benchmark;
  rep->metrics = opt->metrics;
  rep->clear_conv = opt->clear_conv;
  if (!is_dir(opt->results) && opt->benchmark != BENCH_TAO)
    return masa_error("%s: results directory not found", opt->results);
  int rc;
  switch (opt->benchmark) {
    case BENCH_MOT:
      if (opt->metrics & EVAL_TETA) return masa_error("mot: teta is evaluated on tao and bdd only");
      rc = evaluate_mot(opt, rep);
      break;
    case BENCH_BDD:
      rc = evaluate_bdd(opt, rep);
      break;
    default:
      rc = evaluate_tao(opt, rep);
      break;
  }
  if (rc != MASA_OK) eval_report_free(rep);
  return rc;
}

void eval_report_free(eval_report *rep) {
  free(rep->seqs);
  free(rep->classes);
  rep->seqs = rep->classes = NULL;
  rep->n_seqs = rep->n_classes = 0;
}

int eval_parse_metrics(const char *list, unsigned *bits) {
  *bits = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    if (!strcmp(tok, "clear"))
      *bits |= EVAL_CLEAR;
    else if (!strcmp(tok, "identity"))
      *bits |= EVAL_IDENTITY;
    else if (!strcmp(tok, "hota"))
      *bits |= EVAL_HOTA;
    else if (!strcmp(tok, "teta"))
      *bits |= EVAL_TETA;
    else
      return masa_error("--metrics: unknown metric '%s' (expected clear, identity, hota, teta)", tok);
  }
  if (!*bits) return masa_error("--metrics: empty list");
  return MASA_OK;
}
