// Evaluation report: a per-sequence + combined table on a terminal, and JSON with TrackEval's
// field names (fractions, not percentages; per-alpha arrays for HOTA and TETA).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/json_file.h"

static void print_header(const eval_report *rep, FILE *f, const char *first) {
  fprintf(f, "%-28s", first);
  if (rep->metrics & EVAL_HOTA) fprintf(f, " %7s %7s %7s %7s", "HOTA", "DetA", "AssA", "LocA");
  if (rep->metrics & EVAL_CLEAR)
    fprintf(f, " %7s %7s %6s %7s %7s %6s %5s %5s", "MOTA", "MOTP", "IDSW", "FP", "FN", "Frag", "MT", "ML");
  if (rep->metrics & EVAL_IDENTITY) fprintf(f, " %7s %7s %7s", "IDF1", "IDP", "IDR");
  if (rep->metrics & EVAL_TETA) fprintf(f, " %7s %7s %7s %7s", "TETA", "LocA", "AssocA", "ClsA");
  fputc('\n', f);
}

static void print_row(const eval_report *rep, FILE *f, const eval_row *r, const char *name) {
  fprintf(f, "%-28.28s", name);
  if (rep->metrics & EVAL_HOTA)
    fprintf(f, " %7.3f %7.3f %7.3f %7.3f", 100 * hota_mean(r->hota.hota), 100 * hota_mean(r->hota.deta),
            100 * hota_mean(r->hota.assa), 100 * hota_mean(r->hota.loca));
  if (rep->metrics & EVAL_CLEAR)
    fprintf(f, " %7.3f %7.3f %6lld %7lld %7lld %6lld %5lld %5lld", 100 * r->clear.mota, 100 * r->clear.motp,
            (long long)r->clear.idsw, (long long)r->clear.fp, (long long)r->clear.fn, (long long)r->clear.frag,
            (long long)r->clear.mt, (long long)r->clear.ml);
  if (rep->metrics & EVAL_IDENTITY)
    fprintf(f, " %7.3f %7.3f %7.3f", 100 * r->identity.idf1, 100 * r->identity.idp, 100 * r->identity.idr);
  if (rep->metrics & EVAL_TETA)
    fprintf(f, " %7.3f %7.3f %7.3f %7.3f", 100 * teta_mean(r->teta.teta), 100 * teta_mean(r->teta.loca),
            100 * teta_mean(r->teta.assoca), 100 * r->teta.clsa);
  fputc('\n', f);
}

void eval_report_print(const eval_report *rep, FILE *f) {
  print_header(rep, f, rep->benchmark == BENCH_MOT ? "sequence" : "video");
  for (int k = 0; k < rep->n_seqs; k++) print_row(rep, f, &rep->seqs[k], rep->seqs[k].name);
  if (rep->benchmark != BENCH_TAO) print_row(rep, f, &rep->combined, "COMBINED");
  if (rep->has_classes) {
    fputc('\n', f);
    print_header(rep, f, "class");
    for (int k = 0; k < rep->n_classes; k++) print_row(rep, f, &rep->classes[k], rep->classes[k].name);
    print_row(rep, f, &rep->class_avg, "CLASS_AVG (m-metrics)");
    if (rep->benchmark == BENCH_BDD) print_row(rep, f, &rep->combined, "DET_AVG");
  }
}

static void add_array(cJSON *o, const char *key, const double *v, int n) {
  cJSON_AddItemToObject(o, key, cJSON_CreateDoubleArray(v, n));
}

static cJSON *row_json(const eval_report *rep, const eval_row *r) {
  cJSON *o = cJSON_CreateObject();
  if (rep->metrics & EVAL_CLEAR) {
    const clear_metrics *c = &r->clear;
    cJSON *m = cJSON_AddObjectToObject(o, "CLEAR");
    cJSON_AddNumberToObject(m, "MOTA", c->mota);
    cJSON_AddNumberToObject(m, "MOTP", c->motp);
    cJSON_AddNumberToObject(m, "MODA", c->moda);
    cJSON_AddNumberToObject(m, "CLR_Re", c->recall);
    cJSON_AddNumberToObject(m, "CLR_Pr", c->precision);
    cJSON_AddNumberToObject(m, "MTR", c->mtr);
    cJSON_AddNumberToObject(m, "PTR", c->ptr);
    cJSON_AddNumberToObject(m, "MLR", c->mlr);
    cJSON_AddNumberToObject(m, "sMOTA", c->smota);
    cJSON_AddNumberToObject(m, "CLR_F1", c->f1);
    cJSON_AddNumberToObject(m, "FP_per_frame", c->fp_per_frame);
    cJSON_AddNumberToObject(m, "MOTAL", c->motal);
    cJSON_AddNumberToObject(m, "MOTP_sum", c->motp_sum);
    cJSON_AddNumberToObject(m, "CLR_TP", (double)c->tp);
    cJSON_AddNumberToObject(m, "CLR_FN", (double)c->fn);
    cJSON_AddNumberToObject(m, "CLR_FP", (double)c->fp);
    cJSON_AddNumberToObject(m, "IDSW", (double)c->idsw);
    cJSON_AddNumberToObject(m, "MT", (double)c->mt);
    cJSON_AddNumberToObject(m, "PT", (double)c->pt);
    cJSON_AddNumberToObject(m, "ML", (double)c->ml);
    cJSON_AddNumberToObject(m, "Frag", (double)c->frag);
    cJSON_AddNumberToObject(m, "CLR_Frames", (double)c->frames);
  }
  if (rep->metrics & EVAL_IDENTITY) {
    cJSON *m = cJSON_AddObjectToObject(o, "Identity");
    cJSON_AddNumberToObject(m, "IDF1", r->identity.idf1);
    cJSON_AddNumberToObject(m, "IDR", r->identity.idr);
    cJSON_AddNumberToObject(m, "IDP", r->identity.idp);
    cJSON_AddNumberToObject(m, "IDTP", (double)r->identity.idtp);
    cJSON_AddNumberToObject(m, "IDFN", (double)r->identity.idfn);
    cJSON_AddNumberToObject(m, "IDFP", (double)r->identity.idfp);
  }
  if (rep->metrics & EVAL_HOTA) {
    const hota_metrics *h = &r->hota;
    cJSON *m = cJSON_AddObjectToObject(o, "HOTA");
    const char *names[] = {"HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA"};
    const double *arrs[] = {h->hota, h->deta, h->assa, h->detre, h->detpr, h->assre, h->asspr, h->loca, h->owta};
    for (int k = 0; k < 9; k++) cJSON_AddNumberToObject(m, names[k], hota_mean(arrs[k]));
    cJSON_AddNumberToObject(m, "HOTA(0)", h->hota0);
    cJSON_AddNumberToObject(m, "LocA(0)", h->loca0);
    cJSON_AddNumberToObject(m, "HOTALocA(0)", h->hotaloca0);
    cJSON *pa = cJSON_AddObjectToObject(m, "per_alpha");
    for (int k = 0; k < 9; k++) add_array(pa, names[k], arrs[k], HOTA_NUM_ALPHA);
    add_array(pa, "HOTA_TP", h->tp, HOTA_NUM_ALPHA);
    add_array(pa, "HOTA_FN", h->fn, HOTA_NUM_ALPHA);
    add_array(pa, "HOTA_FP", h->fp, HOTA_NUM_ALPHA);
  }
  if (rep->metrics & EVAL_TETA) {
    const teta_metrics *t = &r->teta;
    cJSON *m = cJSON_AddObjectToObject(o, "TETA");
    const char *names[] = {"TETA", "LocA", "AssocA", "LocRe", "LocPr", "AssocRe", "AssocPr"};
    const double *arrs[] = {t->teta, t->loca, t->assoca, t->locre, t->locpr, t->assocre, t->assocpr};
    for (int k = 0; k < 7; k++) cJSON_AddNumberToObject(m, names[k], teta_mean(arrs[k]));
    cJSON_AddNumberToObject(m, "ClsA", t->clsa);
    cJSON_AddNumberToObject(m, "ClsRe", t->clsre);
    cJSON_AddNumberToObject(m, "ClsPr", t->clspr);
    cJSON *pa = cJSON_AddObjectToObject(m, "per_alpha");
    for (int k = 0; k < 7; k++) add_array(pa, names[k], arrs[k], TETA_NUM_ALPHA);
    add_array(pa, "Loc_TP", t->loc_tp, TETA_NUM_ALPHA);
    add_array(pa, "Loc_FN", t->loc_fn, TETA_NUM_ALPHA);
    add_array(pa, "Loc_FP", t->loc_fp, TETA_NUM_ALPHA);
    add_array(pa, "Cls_TP", t->cls_tp, TETA_NUM_ALPHA);
    add_array(pa, "Cls_FN", t->cls_fn, TETA_NUM_ALPHA);
    add_array(pa, "Cls_FP", t->cls_fp, TETA_NUM_ALPHA);
  }
  return o;
}

int eval_report_write_json(const eval_report *rep, const char *path) {
  static const char *bench[] = {"mot", "bdd", "tao"};
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "benchmark", bench[rep->benchmark]);
  cJSON_AddStringToObject(root, "conventions", rep->clear_conv == CLEAR_MOTMETRICS ? "motmetrics" : "trackeval");
  cJSON *seqs = cJSON_AddObjectToObject(root, "sequences");
  for (int k = 0; k < rep->n_seqs; k++) cJSON_AddItemToObject(seqs, rep->seqs[k].name, row_json(rep, &rep->seqs[k]));
  if (rep->benchmark != BENCH_TAO) cJSON_AddItemToObject(root, "combined", row_json(rep, &rep->combined));
  if (rep->has_classes) {
    cJSON *cls = cJSON_AddObjectToObject(root, "classes");
    for (int k = 0; k < rep->n_classes; k++)
      cJSON_AddItemToObject(cls, rep->classes[k].name, row_json(rep, &rep->classes[k]));
    cJSON_AddItemToObject(root, "class_average", row_json(rep, &rep->class_avg));
  }
  int rc = json_write_file(path, root);
  cJSON_Delete(root);
  return rc;
}
