// Loss curves from metrics.jsonl (train/metrics_log.h) as a PNG: one panel per loss term (the
// columns whose name starts with "loss"), in a grid of 2 columns (1 when there is one term).
// Each panel: the raw values as a faint line, a debiased EMA (TensorBoard's smoothing) as a solid
// line, grid lines and numbered ticks on both axes, the term's name and its last smoothed value.
// Non-finite values (skipped steps) break the lines. With log_y, values <= 0 are left out.
#ifndef MASA_PLOT_H
#define MASA_PLOT_H

#include "data/image.h"
#include "train/metrics_log.h"

typedef struct {
  int log_y;       // log10 y axis
  double smooth;   // EMA weight in [0, 1); 0 draws no smoothed line; < 0: automatic,
                   // 1 - 1/max(10, steps/100) (a window of ~1% of the run)
  int panel_w, panel_h;  // pixels per panel
} plot_opts;

void plot_opts_default(plot_opts *o);  // linear, automatic smoothing, 480 x 320 panels

// Column indices of the loss terms ("loss" first when present, then table order); returns the
// count (at most max).
int plot_loss_terms(const metrics_table *t, int *cols, int max);
// Image size for n panels: (n >= 2 ? 2 : 1) * panel_w by ceil(n / cols) * panel_h.
void plot_canvas_size(int nterms, const plot_opts *o, int *w, int *h);
// Renders into a new image. MASA_ERR when the table has no loss column.
int plot_losses(const metrics_table *t, const plot_opts *o, image_u8 *out);
// Reads RUN_DIR/metrics.jsonl and writes out_path (NULL: RUN_DIR/loss.png). *nterms and *nsteps
// (may be NULL) receive what was drawn.
int plot_run(const char *run_dir, const char *out_path, const plot_opts *o, int *nterms,
             int64_t *nsteps);

#endif
