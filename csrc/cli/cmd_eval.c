// `masa eval --benchmark mot|tao|bdd --gt GT --results RES [--metrics clear,identity,hota,teta]
//  [--out METRICS.json] [--mot-variant MOT17|MOT16|MOT20|MOT15] [--conventions trackeval|motmetrics]
//  [--no-track-class-vote]`: scores tracking results against a benchmark's ground truth, prints a
// per-sequence + combined table and writes the metrics as JSON.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/evaluate.h"

static const char *usage =
    "usage: masa eval --benchmark mot|tao|bdd --gt GT --results RES [--metrics LIST] [--out FILE.json]\n"
    "  mot: GT/SEQ/gt/gt.txt (+ GT/SEQ/seqinfo.ini), RES/SEQ.txt\n"
    "  bdd: GT/VIDEO.json, RES/VIDEO.json (BDD100K box tracking)\n"
    "  tao: GT = TAO annotations JSON, RES = results JSON list\n"
    "  --metrics LIST          comma-separated: clear, identity, hota, teta\n"
    "                          (default clear,identity,hota; tao: teta)\n"
    "  --mot-variant V         MOT17 (default; also MOT16), MOT20 or MOT15 (no classes)\n"
    "  --conventions C         trackeval (default, reported) or motmetrics (CLEAR matching of\n"
    "                          py-motmetrics, for cross-checks)\n"
    "  --no-track-class-vote   tao: keep per-box categories (default: per-track majority, as MASA)\n";

int cmd_eval(int argc, char **argv) {
  eval_options opt = {.benchmark = BENCH_MOT, .clear_conv = CLEAR_TRACKEVAL, .mot = MOT_VARIANT_17,
                      .track_class_vote = 1};
  const char *bench = NULL, *metrics = NULL, *out = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 0;
    }
#define TAKE(var)                                            \
  do {                                                       \
    if (!val) {                                              \
      log_error("eval: %s needs a value\n%s", a, usage);    \
      return 1;                                              \
    }                                                        \
    var = val;                                               \
    i++;                                                     \
  } while (0)
    if (!strcmp(a, "--benchmark")) TAKE(bench);
    else if (!strcmp(a, "--gt")) TAKE(opt.gt);
    else if (!strcmp(a, "--results")) TAKE(opt.results);
    else if (!strcmp(a, "--metrics")) TAKE(metrics);
    else if (!strcmp(a, "--out")) TAKE(out);
    else if (!strcmp(a, "--no-track-class-vote")) opt.track_class_vote = 0;
    else if (!strcmp(a, "--mot-variant")) {
      const char *v = NULL;
      TAKE(v);
      if (!strcmp(v, "MOT17") || !strcmp(v, "MOT16")) opt.mot = MOT_VARIANT_17;
      else if (!strcmp(v, "MOT20")) opt.mot = MOT_VARIANT_20;
      else if (!strcmp(v, "MOT15")) opt.mot = MOT_VARIANT_15;
      else {
        log_error("eval: --mot-variant: expected MOT15, MOT16, MOT17 or MOT20, got '%s'", v);
        return 1;
      }
    } else if (!strcmp(a, "--conventions")) {
      const char *v = NULL;
      TAKE(v);
      if (!strcmp(v, "trackeval")) opt.clear_conv = CLEAR_TRACKEVAL;
      else if (!strcmp(v, "motmetrics")) opt.clear_conv = CLEAR_MOTMETRICS;
      else {
        log_error("eval: --conventions: expected trackeval or motmetrics, got '%s'", v);
        return 1;
      }
    } else if (!strcmp(a, "--log-level")) {
      const char *v = NULL;
      TAKE(v);
      int lv = log_level_parse(v);
      if (lv < 0) {
        log_error("--log-level: expected debug, info, warn, error or quiet, got '%s'", v);
        return 1;
      }
      log_set_level((log_level)lv);
    } else {
      log_error("eval: unexpected argument '%s'\n%s", a, usage);
      return 1;
    }
#undef TAKE
  }
  if (!bench || !opt.gt || !opt.results) {
    log_error("eval: --benchmark, --gt and --results are required\n%s", usage);
    return 1;
  }
  if (!strcmp(bench, "mot")) opt.benchmark = BENCH_MOT;
  else if (!strcmp(bench, "bdd")) opt.benchmark = BENCH_BDD;
  else if (!strcmp(bench, "tao")) opt.benchmark = BENCH_TAO;
  else {
    log_error("eval: --benchmark: expected mot, tao or bdd, got '%s'", bench);
    return 1;
  }
  if (!metrics) metrics = opt.benchmark == BENCH_TAO ? "teta" : "clear,identity,hota";
  if (eval_parse_metrics(metrics, &opt.metrics) != MASA_OK) {
    log_error("eval: %s", masa_errmsg());
    return 1;
  }
  eval_report rep;
  if (evaluate_benchmark(&opt, &rep) != MASA_OK) {
    log_error("eval: %s", masa_errmsg());
    return 1;
  }
  eval_report_print(&rep, stdout);
  int rc = 0;
  if (out) {
    if (eval_report_write_json(&rep, out) != MASA_OK) {
      log_error("eval: %s", masa_errmsg());
      rc = 1;
    } else {
      log_info("eval: metrics written to %s", out);
    }
  }
  eval_report_free(&rep);
  return rc;
}
