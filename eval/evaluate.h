// Benchmark evaluation: reads ground truth and results in a benchmark's layout, applies that
// benchmark's preprocessing (TrackEval conventions, named in evaluate.c) and scores every
// sequence, class and combination with the requested metrics.
//   mot: GT/SEQ/gt/gt.txt (+ GT/SEQ/seqinfo.ini), RES/SEQ.txt. Pedestrians only; MOT17 (and 16)
//        remove predictions matched to distractor classes, drop gt rows with flag 0 or another
//        class; MOT20 adds class 6 to the distractors; MOT15 keeps every gt row with flag != 0.
//   bdd: GT/VIDEO.json and RES/VIDEO.json (BDD100K box-tracking lists of frames); eight classes
//        scored separately, ignore regions (other person, other vehicle, trailer, crowd) remove
//        unmatched predictions; combined by class average (mMOTA, mIDF1, mHOTA) and detection
//        average (MOTA, IDF1, HOTA); TETA on request (exhaustive labelling: class FPs count
//        outside the clusters too).
//   tao: GT is a TAO COCO-video JSON, RES a results JSON list; TETA (class-agnostic clusters).
#ifndef MASA_EVAL_EVALUATE_H
#define MASA_EVAL_EVALUATE_H

#include <stdio.h>

#include "eval/metrics.h"
#include "eval/teta.h"

typedef enum { BENCH_MOT = 0, BENCH_BDD = 1, BENCH_TAO = 2 } eval_benchmark;
typedef enum { MOT_VARIANT_17 = 0, MOT_VARIANT_20 = 1, MOT_VARIANT_15 = 2 } mot_variant;

#define EVAL_CLEAR 1u
#define EVAL_IDENTITY 2u
#define EVAL_HOTA 4u
#define EVAL_TETA 8u

typedef struct {
  eval_benchmark benchmark;
  const char *gt, *results;
  unsigned metrics;            // EVAL_* bits
  clear_convention clear_conv;  // CLEAR_TRACKEVAL for reported numbers
  mot_variant mot;
  int track_class_vote;        // tao: per-track majority category before TETA (MASA's tcc)
} eval_options;

typedef struct {
  char name[160];
  clear_metrics clear;
  identity_metrics identity;
  hota_metrics hota;
  teta_metrics teta;
  int64_t num_gt_dets, num_tr_dets;
} eval_row;

typedef struct {
  eval_benchmark benchmark;
  unsigned metrics;
  clear_convention clear_conv;
  eval_row *seqs;  // per sequence (bdd: detection-averaged over its classes)
  int n_seqs;
  eval_row combined;  // mot: all sequences; bdd: detection average over classes
  eval_row *classes;  // bdd, tao: per class over all sequences
  int n_classes;
  eval_row class_avg;  // bdd, tao: average over classes
  int has_classes;
} eval_report;

// Returns MASA_ERR with a message naming the file and record on bad input.
int evaluate_benchmark(const eval_options *opt, eval_report *rep);
void eval_report_free(eval_report *rep);
void eval_report_print(const eval_report *rep, FILE *f);
int eval_report_write_json(const eval_report *rep, const char *path);
// "clear,identity,hota,teta" -> bits; MASA_ERR on an unknown name.
int eval_parse_metrics(const char *list, unsigned *bits);

#endif
