// Tracking metrics against the reference implementations (oracle_metrics.py): TrackEval's CLEAR,
// Identity and HOTA on MOT17-style sequences (distractors, zero flags, crowds, exact ties, IoUs on
// the 0.5 boundary) and BDD100K videos (ignore regions, class and detection averages); TrackEval
// MOT15 and py-motmetrics (its own CLEAR matching) on class-less sequences; scipy's
// linear_sum_assignment on tie-heavy cost matrices (same pairs, not just the same cost); and the
// hand-checked swap case of formats-metrics.md.
// Tolerances: counts exactly; fractions 1e-9 absolute (the reference computes in double with the
// same operation order, so differences are rounding only; the brief asks for 1e-6).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "eval/assign.h"
#include "eval/evaluate.h"
#include "eval/json_file.h"
#include "eval/mot_format.h"
#include "harness.h"

#define TOL 1e-9

typedef struct {
  const char *what;
  double max_dev;
  int64_t n, bad;
  char first_bad[512];
} cmp_stats;

static void cmp_value(cmp_stats *st, const char *where, const char *field, double got, double exp, int count) {
  if (isnan(exp)) return;  // motmetrics' overall MOTP is NaN when a sequence has no match
  double dev = fabs(got - exp);
  st->n++;
  if (dev > st->max_dev || isnan(dev)) st->max_dev = isnan(dev) ? INFINITY : dev;
  int ok = count ? got == exp : dev <= TOL;
  if (!ok && st->bad++ == 0)
    snprintf(st->first_bad, sizeof st->first_bad, "%s %s: got %.12g, reference %.12g", where, field, got, exp);
}

static void cmp_report(cmp_stats *st) {
  char what[800];
  snprintf(what, sizeof what, "%s: %lld values, max |dev| %.3g%s%s", st->what, (long long)st->n, st->max_dev,
           st->bad ? "; first mismatch: " : "", st->bad ? st->first_bad : "");
  check_true(what, st->bad == 0 && st->n > 0);
}

static double jnum(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsNumber(v)) return v->valuedouble;
  return NAN;  // json.dump writes NaN, which cJSON does not parse as a number
}

static const cJSON *jobj(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v) {
    fprintf(stderr, "expected.json: missing key '%s'\n", k);
    exit(1);
  }
  return v;
}

static void cmp_trackeval_row(cmp_stats *st, const char *where, const eval_row *r, const cJSON *e) {
  const cJSON *c = jobj(e, "CLEAR"), *id = jobj(e, "Identity"), *h = jobj(e, "HOTA");
  const clear_metrics *m = &r->clear;
  struct {
    const char *k;
    double v;
    int count;
  } cf[] = {{"MOTA", m->mota, 0}, {"MOTP", m->motp, 0}, {"MODA", m->moda, 0}, {"CLR_Re", m->recall, 0},
            {"CLR_Pr", m->precision, 0}, {"MTR", m->mtr, 0}, {"PTR", m->ptr, 0}, {"MLR", m->mlr, 0},
            {"sMOTA", m->smota, 0}, {"CLR_F1", m->f1, 0}, {"FP_per_frame", m->fp_per_frame, 0},
            {"MOTAL", m->motal, 0}, {"MOTP_sum", m->motp_sum, 0}, {"CLR_TP", (double)m->tp, 1},
            {"CLR_FN", (double)m->fn, 1}, {"CLR_FP", (double)m->fp, 1}, {"IDSW", (double)m->idsw, 1},
            {"MT", (double)m->mt, 1}, {"PT", (double)m->pt, 1}, {"ML", (double)m->ml, 1},
            {"Frag", (double)m->frag, 1}, {"CLR_Frames", (double)m->frames, 1}};
  for (size_t k = 0; k < sizeof cf / sizeof cf[0]; k++) cmp_value(st, where, cf[k].k, cf[k].v, jnum(c, cf[k].k), cf[k].count);
  const identity_metrics *im = &r->identity;
  cmp_value(st, where, "IDF1", im->idf1, jnum(id, "IDF1"), 0);
  cmp_value(st, where, "IDR", im->idr, jnum(id, "IDR"), 0);
  cmp_value(st, where, "IDP", im->idp, jnum(id, "IDP"), 0);
  cmp_value(st, where, "IDTP", (double)im->idtp, jnum(id, "IDTP"), 1);
  cmp_value(st, where, "IDFN", (double)im->idfn, jnum(id, "IDFN"), 1);
  cmp_value(st, where, "IDFP", (double)im->idfp, jnum(id, "IDFP"), 1);
  const hota_metrics *hm = &r->hota;
  const char *names[] = {"HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA",
                         "HOTA_TP", "HOTA_FN", "HOTA_FP"};
  const double *arrs[] = {hm->hota, hm->deta, hm->assa, hm->detre, hm->detpr, hm->assre, hm->asspr,
                          hm->loca, hm->owta, hm->tp, hm->fn, hm->fp};
  for (int k = 0; k < 12; k++) {
    const cJSON *a = jobj(h, names[k]);
    for (int q = 0; q < HOTA_NUM_ALPHA; q++) {
      char f[64];
      snprintf(f, sizeof f, "%s[alpha %.2f]", names[k], hota_alpha(q));
      cmp_value(st, where, f, arrs[k][q], cJSON_GetArrayItem(a, q)->valuedouble, k >= 9);
    }
  }
  cmp_value(st, where, "HOTA(0)", hm->hota0, jnum(h, "HOTA(0)"), 0);
  cmp_value(st, where, "LocA(0)", hm->loca0, jnum(h, "LocA(0)"), 0);
  cmp_value(st, where, "HOTALocA(0)", hm->hotaloca0, jnum(h, "HOTALocA(0)"), 0);
}

static void cmp_motmetrics_row(cmp_stats *st, const char *where, const eval_row *r, const cJSON *e) {
  const clear_metrics *m = &r->clear;
  const identity_metrics *im = &r->identity;
  cmp_value(st, where, "num_objects", (double)(m->tp + m->fn), jnum(e, "num_objects"), 1);
  cmp_value(st, where, "num_matches", (double)(m->tp - m->idsw), jnum(e, "num_matches"), 1);
  cmp_value(st, where, "num_switches", (double)m->idsw, jnum(e, "num_switches"), 1);
  cmp_value(st, where, "num_false_positives", (double)m->fp, jnum(e, "num_false_positives"), 1);
  cmp_value(st, where, "num_misses", (double)m->fn, jnum(e, "num_misses"), 1);
  cmp_value(st, where, "num_fragmentations", (double)m->frag, jnum(e, "num_fragmentations"), 1);
  cmp_value(st, where, "mostly_tracked", (double)m->mt, jnum(e, "mostly_tracked"), 1);
  cmp_value(st, where, "partially_tracked", (double)m->pt, jnum(e, "partially_tracked"), 1);
  cmp_value(st, where, "mostly_lost", (double)m->ml, jnum(e, "mostly_lost"), 1);
  if (m->tp + m->fn > 0) cmp_value(st, where, "mota", m->mota, jnum(e, "mota"), 0);
  // motmetrics' MOTP is the mean distance 1 - IoU over matches.
  if (m->tp > 0) cmp_value(st, where, "motp (1 - IoU)", 1 - m->motp, jnum(e, "motp"), 0);
  cmp_value(st, where, "idf1", im->idf1, jnum(e, "idf1"), 0);
  cmp_value(st, where, "idp", im->idp, jnum(e, "idp"), 0);
  cmp_value(st, where, "idr", im->idr, jnum(e, "idr"), 0);
  cmp_value(st, where, "idtp", (double)im->idtp, jnum(e, "idtp"), 1);
  cmp_value(st, where, "idfn", (double)im->idfn, jnum(e, "idfn"), 1);
  cmp_value(st, where, "idfp", (double)im->idfp, jnum(e, "idfp"), 1);
}

static void run_mot(const char *base, const char *sub, mot_variant var, clear_convention conv,
                    const cJSON *expected, const char *what, int motmetrics) {
  char gt[4200], res[4200];
  snprintf(gt, sizeof gt, "%s/%s/gt", base, sub);
  snprintf(res, sizeof res, "%s/%s/trackers/res", base, sub);
  eval_options opt = {.benchmark = BENCH_MOT, .gt = gt, .results = res,
                      .metrics = EVAL_CLEAR | EVAL_IDENTITY | EVAL_HOTA, .clear_conv = conv, .mot = var};
  eval_report rep;
  if (evaluate_benchmark(&opt, &rep) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    check_true(what, 0);
    return;
  }
  cmp_stats st = {.what = what};
  int n = 0;
  for (int k = 0; k < rep.n_seqs; k++) {
    const cJSON *e = jobj(expected, rep.seqs[k].name);
    motmetrics ? cmp_motmetrics_row(&st, rep.seqs[k].name, &rep.seqs[k], e)
               : cmp_trackeval_row(&st, rep.seqs[k].name, &rep.seqs[k], e);
    n++;
  }
  const cJSON *e = jobj(expected, "COMBINED");
  motmetrics ? cmp_motmetrics_row(&st, "COMBINED", &rep.combined, e) : cmp_trackeval_row(&st, "COMBINED", &rep.combined, e);
  check_true("every reference sequence evaluated", n == cJSON_GetArraySize(expected) - 1);
  cmp_report(&st);
  eval_report_free(&rep);
}

static void run_bdd(const char *base, const cJSON *expected) {
  char gt[4200], res[4200];
  snprintf(gt, sizeof gt, "%s/bdd/gt", base);
  snprintf(res, sizeof res, "%s/bdd/trackers/res", base);
  eval_options opt = {.benchmark = BENCH_BDD, .gt = gt, .results = res,
                      .metrics = EVAL_CLEAR | EVAL_IDENTITY | EVAL_HOTA, .clear_conv = CLEAR_TRACKEVAL};
  eval_report rep;
  if (evaluate_benchmark(&opt, &rep) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    check_true("bdd evaluation runs", 0);
    return;
  }
  cmp_stats st = {.what = "BDD100K vs TrackEval (per class, class average, detection average)"};
  const cJSON *cls = jobj(expected, "classes");
  for (int k = 0; k < rep.n_classes; k++) cmp_trackeval_row(&st, rep.classes[k].name, &rep.classes[k], jobj(cls, rep.classes[k].name));
  cmp_trackeval_row(&st, "class average", &rep.class_avg, jobj(expected, "class_average"));
  cmp_trackeval_row(&st, "detection average", &rep.combined, jobj(expected, "combined"));
  cmp_report(&st);
  eval_report_free(&rep);
}

static void run_lsa(const cJSON *cases) {
  int n_ok = 0, n = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    int nr = (int)jnum(c, "n"), nc = (int)jnum(c, "m");
    double cost[64];
    const cJSON *v;
    int q = 0;
    cJSON_ArrayForEach(v, jobj(c, "cost")) cost[q++] = v->valuedouble;
    int64_t rows[8], cols[8];
    int64_t k = linear_sum_assignment(cost, nr, nc, rows, cols);
    int ok = k == cJSON_GetArraySize(jobj(c, "rows"));
    for (int64_t p = 0; ok && p < k; p++)
      ok = rows[p] == cJSON_GetArrayItem(jobj(c, "rows"), (int)p)->valueint &&
           cols[p] == cJSON_GetArrayItem(jobj(c, "cols"), (int)p)->valueint;
    if (!ok && n - n_ok < 3) {
      fprintf(stderr, "  lsa case %d (%dx%d) differs from scipy:", n, nr, nc);
      for (int64_t p = 0; p < k; p++) fprintf(stderr, " (%lld,%lld)", (long long)rows[p], (long long)cols[p]);
      fprintf(stderr, "\n");
    }
    n_ok += ok;
    n++;
  }
  char what[128];
  snprintf(what, sizeof what, "linear_sum_assignment: same pairs as scipy on %d/%d tie-heavy problems", n_ok, n);
  check_true(what, n_ok == n && n > 0);
  // Edge cases: empty, infeasible, +inf entries.
  int64_t r[2], cc[2];
  check_true("lsa: empty matrix gives no pairs", linear_sum_assignment(NULL, 0, 3, r, cc) == 0);
  double inf_row[4] = {INFINITY, INFINITY, 1, 2};
  check_true("lsa: a row of +inf is infeasible", linear_sum_assignment(inf_row, 2, 2, r, cc) == -1);
  double nan_cost[1] = {NAN};
  check_true("lsa: NaN is rejected", linear_sum_assignment(nan_cost, 1, 1, r, cc) == -1);
}

// formats-metrics.md: two far-apart objects over 10 frames whose predicted ids swap at frame 6.
static void hand_check_swap(void) {
  eval_seq s = {.num_frames = 10, .num_gt_ids = 2, .num_tr_ids = 2, .num_gt_dets = 20, .num_tr_dets = 20};
  s.frames = calloc(10, sizeof(eval_frame));
  for (int t = 0; t < 10; t++) {
    eval_frame *f = &s.frames[t];
    f->n_gt = f->n_tr = 2;
    f->gt_ids = malloc(2 * sizeof(int));
    f->tr_ids = malloc(2 * sizeof(int));
    f->sim = calloc(4, sizeof(double));
    f->gt_ids[0] = 0;
    f->gt_ids[1] = 1;
    int swap = t >= 5;
    f->tr_ids[0] = swap ? 1 : 0;  // prediction 0 sits on gt 0 and carries id 0, then id 1
    f->tr_ids[1] = swap ? 0 : 1;
    f->sim[0] = f->sim[3] = 1.0;
  }
  clear_metrics c;
  identity_metrics id;
  hota_metrics h;
  clear_eval(&s, CLEAR_TRACKEVAL, 0.5, &c);
  identity_eval(&s, CLEAR_TRACKEVAL, 0.5, &id);
  hota_eval(&s, &h);
  check_true("hand check: IDSW 2", c.idsw == 2);
  check_true("hand check: MOTA 0.9", fabs(c.mota - 0.9) < 1e-12);
  check_true("hand check: IDF1 0.5", fabs(id.idf1 - 0.5) < 1e-12);
  check_true("hand check: HOTA sqrt(1/3) at every alpha", fabs(hota_mean(h.hota) - sqrt(1.0 / 3)) < 1e-12 &&
                                                              fabs(h.hota[HOTA_NUM_ALPHA - 1] - sqrt(1.0 / 3)) < 1e-12);
  clear_eval(&s, CLEAR_MOTMETRICS, 0.5, &c);
  check_true("hand check (motmetrics conventions): IDSW 2, MOTA 0.9", c.idsw == 2 && fabs(c.mota - 0.9) < 1e-12);
  eval_seq_free(&s);
}

// The same case through the files: MOTChallenge writer, reader, MOT17 preprocessing.
static void hand_check_files(void) {
  char dir[] = "/tmp/masa_test_metrics_XXXXXX";
  if (!mkdtemp(dir)) {
    check_true("mkdtemp", 0);
    return;
  }
  char p[512];
  snprintf(p, sizeof p, "%s/gt", dir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/gt/SWAP", dir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/gt/SWAP/gt", dir);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/res", dir);
  mkdir(p, 0755);
  mot_rows gt = {0}, res = {0};
  for (int t = 1; t <= 10; t++)
    for (int k = 0; k < 2; k++) {
      double g[9] = {t, k + 1, 100 + 500 * k, 50, 40, 80, 1, 1, 1};
      mot_rows_push(&gt, g, 9);
      int id = t >= 6 ? 2 - k : k + 1;
      double r[10] = {t, id, 100 + 500 * k, 50, 40, 80, 0.9, -1, -1, -1};
      mot_rows_push(&res, r, 10);
    }
  // A static person (class 7) with a prediction on it: removed by the MOT17 preprocessing, so it
  // is neither a TP nor an FP; an ignored pedestrian (flag 0) without prediction is no FN.
  double d[9] = {3, 9, 300, 300, 40, 80, 1, 7, 1}, dr[10] = {3, 9, 300, 300, 40, 80, 0.8, -1, -1, -1};
  double z[9] = {4, 10, 700, 300, 40, 80, 0, 1, 1};
  mot_rows_push(&gt, d, 9);
  mot_rows_push(&gt, z, 9);
  mot_rows_push(&res, dr, 10);
  snprintf(p, sizeof p, "%s/gt/SWAP/gt/gt.txt", dir);
  check_true("mot_write gt", mot_write(p, &gt) == MASA_OK);
  snprintf(p, sizeof p, "%s/res/SWAP.txt", dir);
  check_true("mot_write results", mot_write(p, &res) == MASA_OK);
  mot_seqinfo info = {.frame_rate = 30, .seq_length = 10, .im_width = 1920, .im_height = 1080};
  snprintf(info.name, sizeof info.name, "SWAP");
  snprintf(p, sizeof p, "%s/gt/SWAP/seqinfo.ini", dir);
  check_true("mot_write_seqinfo", mot_write_seqinfo(p, &info) == MASA_OK);
  mot_seqinfo back;
  check_true("seqinfo round trip", mot_read_seqinfo(p, &back) == MASA_OK && back.seq_length == 10 &&
                                       !strcmp(back.name, "SWAP") && back.im_width == 1920);
  char gtd[512], resd[512];
  snprintf(gtd, sizeof gtd, "%s/gt", dir);
  snprintf(resd, sizeof resd, "%s/res", dir);
  eval_options opt = {.benchmark = BENCH_MOT, .gt = gtd, .results = resd,
                      .metrics = EVAL_CLEAR | EVAL_IDENTITY | EVAL_HOTA, .mot = MOT_VARIANT_17};
  eval_report rep;
  int rc = evaluate_benchmark(&opt, &rep);
  if (rc != MASA_OK) fprintf(stderr, "%s\n", masa_errmsg());
  check_true("hand check via files: evaluates", rc == MASA_OK);
  if (rc == MASA_OK) {
    const eval_row *r = &rep.combined;
    check_true("hand check via files: IDSW 2, MOTA 0.9, FP 0, FN 0",
               r->clear.idsw == 2 && fabs(r->clear.mota - 0.9) < 1e-12 && r->clear.fp == 0 && r->clear.fn == 0);
    check_true("hand check via files: IDF1 0.5, HOTA sqrt(1/3)",
               fabs(r->identity.idf1 - 0.5) < 1e-12 && fabs(hota_mean(r->hota.hota) - sqrt(1.0 / 3)) < 1e-12);
    eval_report_free(&rep);
  }
  // A result frame beyond seqLength is an error naming the file (TrackEval refuses it too).
  double bad[10] = {11, 1, 0, 0, 10, 10, 1, -1, -1, -1};
  mot_rows_push(&res, bad, 10);
  snprintf(p, sizeof p, "%s/res/SWAP.txt", dir);
  mot_write(p, &res);
  rc = evaluate_benchmark(&opt, &rep);
  check_true("frame outside seqLength is rejected with the file named",
             rc != MASA_OK && strstr(masa_errmsg(), "SWAP.txt") && strstr(masa_errmsg(), "outside"));
  mot_rows_free(&gt);
  mot_rows_free(&res);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}


// TETA hand checks (metrics_teta.c). Boxes are given by id so that IoUs are exact: each frame
// holds n_gt gt boxes and n_tr predictions with the IoU matrix set directly.
typedef struct {
  int n_gt, n_tr;
  int64_t gid[3], pid[3];
  int gcls[3], pcls[3];
  double sim[9];
} teta_case_frame;

static void teta_run(const teta_case_frame *fr, int nf, int ncls, teta_metrics *avg) {
  teta_seq s = {.num_frames = nf};
  s.frames = calloc((size_t)nf, sizeof(teta_frame));
  for (int t = 0; t < nf; t++) {
    teta_frame *f = &s.frames[t];
    f->n_gt = fr[t].n_gt;
    f->n_tr = fr[t].n_tr;
    f->gt_ids = malloc(3 * sizeof(int64_t));
    f->tr_ids = malloc(3 * sizeof(int64_t));
    f->gt_cls = malloc(3 * sizeof(int));
    f->tr_cls = malloc(3 * sizeof(int));
    f->sim = malloc(9 * sizeof(double));
    memcpy(f->gt_ids, fr[t].gid, sizeof fr[t].gid);
    memcpy(f->tr_ids, fr[t].pid, sizeof fr[t].pid);
    memcpy(f->gt_cls, fr[t].gcls, sizeof fr[t].gcls);
    memcpy(f->tr_cls, fr[t].pcls, sizeof fr[t].pcls);
    memcpy(f->sim, fr[t].sim, sizeof fr[t].sim);
  }
  teta_metrics per[4], cls[4];
  double cls_fp[4 * TETA_NUM_ALPHA] = {0};
  teta_eval_seq(&s, ncls, 0, per, cls_fp);
  for (int c = 0; c < ncls; c++) teta_combine(&per[c], 1, cls_fp + c * TETA_NUM_ALPHA, &cls[c]);
  teta_class_average(cls, ncls, 1, avg);
  teta_seq_free(&s);
}

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

static void teta_hand_checks(void) {
  teta_case_frame fr[10];
  teta_metrics m;
  // Two objects of classes 0 and 1, predicted exactly with the right classes: everything 1.
  for (int t = 0; t < 5; t++)
    fr[t] = (teta_case_frame){2, 2, {1, 2}, {7, 8}, {0, 1}, {0, 1}, {1, 0, 0, 1}};
  teta_run(fr, 5, 2, &m);
  check_true("teta: perfect tracking gives TETA = LocA = AssocA = ClsA = 1",
             near(teta_mean(m.teta), 1) && near(teta_mean(m.loca), 1) && near(teta_mean(m.assoca), 1) && near(m.clsa, 1));
  // The class-1 object predicted as class 0: class 0 gets 5 Cls TPs and 5 Cls FPs (ClsA 1/2),
  // class 1 gets 5 Cls FNs (ClsA 0); localisation and association stay perfect.
  for (int t = 0; t < 5; t++) fr[t].pcls[1] = 0;
  teta_run(fr, 5, 2, &m);
  check_true("teta: wrong class -> ClsA 0.25 (class average), TETA 0.75",
             near(m.clsa, 0.25) && near(teta_mean(m.loca), 1) && near(teta_mean(m.teta), 0.75));
  // One object; a second prediction overlaps it with IoU 0.6 (inside its cluster: an FP at every
  // alpha) and a third is far away (outside every cluster: not an FP on TAO).
  for (int t = 0; t < 4; t++)
    fr[t] = (teta_case_frame){1, 3, {1}, {7, 8, 9}, {0}, {0, 0, 0}, {1, 0.6, 0}};
  teta_run(fr, 4, 1, &m);
  check_true("teta: cluster FP halves LocA, far FP ignored (LocA 0.5, AssocA 1, TETA 5/6)",
             near(teta_mean(m.loca), 0.5) && near(teta_mean(m.assoca), 1) && near(teta_mean(m.teta), 2.5 / 3));
  // One object, prediction id changes half-way: AssocA 0.5.
  for (int t = 0; t < 10; t++) fr[t] = (teta_case_frame){1, 1, {1}, {t < 5 ? 7 : 8}, {0}, {0}, {1}};
  teta_run(fr, 10, 1, &m);
  check_true("teta: id switch half-way -> AssocA 0.5, LocA 1, TETA 5/6",
             near(teta_mean(m.assoca), 0.5) && near(teta_mean(m.loca), 1) && near(teta_mean(m.teta), 2.5 / 3));
  // Zero overlap counts as a match at alpha 0 only: LocA = (1 + 0 * 19) / 20 when the only
  // prediction is a cluster member in another frame (IoU 0.7 in frame 0, 0 in frame 1).
  fr[0] = (teta_case_frame){1, 1, {1}, {7}, {0}, {0}, {0.7}};
  fr[1] = (teta_case_frame){1, 1, {1}, {7}, {0}, {0}, {0}};
  teta_run(fr, 2, 1, &m);
  check_true("teta: alpha 0 matches a zero-overlap pair (Loc TP 2 at alpha 0, 1 at 0.7, 0 above)",
             m.loc_tp[0] == 2 && m.loc_tp[14] == 1 && m.loc_tp[15] == 0);
}

int main(int argc, char **argv) {
  test_begin("metrics", 1234);
  hand_check_swap();
  hand_check_files();
  teta_hand_checks();
  if (argc < 2) {
    fprintf(stderr, "usage: test_metrics ORACLE.h5\n");
    return 1;
  }
  h5file *h5 = oracle_open(argv[1]);
  int64_t one[1] = {1};
  float *n_te = oracle_read(h5, "num_trackeval_mot17", 1, one);
  char base[4096];
  snprintf(base, sizeof base, "%.*s", (int)strlen(argv[1]) - 3, argv[1]);
  char path[4200];
  snprintf(path, sizeof path, "%s/expected.json", base);
  cJSON *exp;
  if (json_load_file(path, &exp) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    return 1;
  }
  check_true("oracle wrote the MOT17 cases", cJSON_GetArraySize(jobj(exp, "trackeval_mot17")) == (int)n_te[0] + 1);
  run_lsa(jobj(exp, "lsa"));
  run_mot(base, "te", MOT_VARIANT_17, CLEAR_TRACKEVAL, jobj(exp, "trackeval_mot17"),
          "MOT17 vs TrackEval (CLEAR, Identity, HOTA per alpha; per sequence and combined)", 0);
  run_mot(base, "mm", MOT_VARIANT_15, CLEAR_TRACKEVAL, jobj(exp, "trackeval_mot15"),
          "MOT15 vs TrackEval (no preprocessing)", 0);
  run_mot(base, "mm", MOT_VARIANT_15, CLEAR_MOTMETRICS, jobj(exp, "motmetrics"),
          "MOT15 vs py-motmetrics (its CLEAR matching; MOTP as distance)", 1);
  run_bdd(base, jobj(exp, "trackeval_bdd"));
  cJSON_Delete(exp);
  free(n_te);
  h5_close(h5);
  return test_end();
}
