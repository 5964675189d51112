// Training metrics as JSON lines: RUN_DIR/metrics.jsonl gets one flat object per step, written
// with one write and flushed, so a crash loses at most the line being written:
//   {"step": 120, "epoch": 0, "loss": 3.21, "loss_track": 1.9, ..., "lr": 9.6e-06,
//    "grad_norm": 12.5, "pairs_per_s": 41.2, "skipped": 0, "skipped_total": 0}
// Loss terms are the keys starting with "loss" (mmdet's names: loss, loss_track, loss_rpn_cls,
// ...). Non-finite values are written as null (JSON has no NaN).
//
// Reading back gives a table with one column per key seen. A run resumed from a checkpoint
// appends steps it already logged; the reader keeps the newest: a row whose step is not above
// the previous row's drops the earlier rows with step >= it. A final line without its newline
// (interrupted write) is ignored with a warning; any other bad line is an error naming file:line.
#ifndef MASA_METRICS_LOG_H
#define MASA_METRICS_LOG_H

#include <stdint.h>

#define METRICS_MAX_TERMS 16

typedef struct {
  const char *name;  // "loss_track", ...
  double value;
} metric_value;

typedef struct {
  int64_t step, epoch;
  int n_losses;
  metric_value losses[METRICS_MAX_TERMS];  // written in this order, before lr
  double lr, grad_norm, pairs_per_s;
  int64_t skipped;        // 1 when this step was skipped (non-finite)
  int64_t skipped_total;  // skipped steps so far
  int n_extra;
  metric_value extra[METRICS_MAX_TERMS];  // anything else (bad samples, data time, ...), last
} metrics_row;

typedef struct metrics_log metrics_log;

// Opens RUN_DIR/metrics.jsonl for appending (RUN_DIR is created if missing, one level).
metrics_log *metrics_open(const char *run_dir);
int metrics_append(metrics_log *m, const metrics_row *r);
void metrics_close(metrics_log *m);

typedef struct {
  int ncols;
  char **cols;    // (ncols) keys in first-seen order; "step" is column 0
  int64_t nrows;
  double *v;      // (nrows, ncols) row-major; NaN where a row lacks the key or holds null
} metrics_table;

int metrics_read(const char *path, metrics_table *t);
int metrics_col(const metrics_table *t, const char *name);  // -1 when absent
void metrics_table_free(metrics_table *t);

#endif
