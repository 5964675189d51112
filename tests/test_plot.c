// Training metrics log and loss plots (train/metrics_log.c, train/plot.c): JSON-lines round trip
// (nulls for non-finite values, columns appearing later, resumed runs overwriting steps, an
// interrupted last line, bad lines named by file:line), and the rendered image (size, curves in
// each term's colour, tick labels, log scale, degenerate inputs, determinism).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "harness.h"
#include "train/metrics_log.h"
#include "train/plot.h"

static char g_root[256];

static double loss_at(int64_t step, int k) { return (3.0 + k) * exp(-step / 40.0) + 0.1 * sin(step * 1.7 + k); }

static metrics_row row_at(int64_t step, double bump) {
  metrics_row r;
  memset(&r, 0, sizeof r);
  r.step = step;
  r.epoch = step / 30;
  static const char *names[3] = {"loss", "loss_track", "loss_rpn_cls"};
  r.n_losses = 3;
  for (int k = 0; k < 3; k++) r.losses[k] = (metric_value){names[k], loss_at(step, k) + bump};
  r.lr = 0.08 * (0.001 + 0.999 * (step < 9 ? step : 9) / 9.0);
  r.grad_norm = 10.0 + step;
  r.pairs_per_s = 41.5;
  r.skipped_total = step / 50;
  return r;
}

static int count_colour(const image_u8 *im, const uint8_t c[3]) {
  int n = 0;
  for (int64_t i = 0; i < (int64_t)im->w * im->h; i++)
    if (!memcmp(im->px + 3 * i, c, 3)) n++;
  return n;
}

static void test_log_round_trip(void) {
  char run[400], path[500];
  snprintf(run, sizeof run, "%s/run", g_root);
  snprintf(path, sizeof path, "%s/metrics.jsonl", run);
  metrics_log *m = metrics_open(run);
  check_true("metrics_open creates the run folder", m != NULL);
  if (!m) return;
  for (int64_t s = 0; s < 100; s++) {
    metrics_row r = row_at(s, 0);
    if (s == 37) r.losses[1].value = NAN, r.skipped = 1, r.grad_norm = INFINITY;
    if (s >= 90) r.n_extra = 1, r.extra[0] = (metric_value){"bad_samples", 2.0};  // a column appearing late
    metrics_append(m, &r);
  }
  metrics_close(m);
  metrics_table t;
  int rc = metrics_read(path, &t);
  check_true("read back 100 rows", rc == MASA_OK && t.nrows == 100);
  if (rc != MASA_OK) return;
  int cl = metrics_col(&t, "loss_track"), clr = metrics_col(&t, "lr"), cb = metrics_col(&t, "bad_samples");
  int cg = metrics_col(&t, "grad_norm"), cs = metrics_col(&t, "skipped");
  check_true("columns: step first, then the keys in order written",
             t.ncols == 11 && !strcmp(t.cols[0], "step") && !strcmp(t.cols[1], "epoch") && !strcmp(t.cols[2], "loss") &&
                 cl == 3 && clr == 5 && cb == 10);
  double worst = 0;
  for (int64_t i = 0; i < 100; i++) {
    if (i == 37) continue;
    double want = loss_at(i, 1), got = t.v[i * t.ncols + cl];
    double e = fabs(got - want) / fabs(want);
    if (!(e <= worst)) worst = e;
    want = row_at(i, 0).lr;
    e = fabs(t.v[i * t.ncols + clr] - want) / want;
    if (!(e <= worst)) worst = e;
  }
  check_true("values round-trip to 9 significant digits", worst <= 5e-9);
  check_true("non-finite values are null -> NaN; skipped flag kept",
             isnan(t.v[37 * t.ncols + cl]) && isnan(t.v[37 * t.ncols + cg]) && t.v[37 * t.ncols + cs] == 1);
  check_true("a late column is NaN in earlier rows", isnan(t.v[10 * t.ncols + cb]) && t.v[95 * t.ncols + cb] == 2.0);
  metrics_table_free(&t);

  // A resumed run logs steps 50..59 again (from its checkpoint at 50): the newest rows win.
  m = metrics_open(run);
  for (int64_t s = 50; s < 60; s++) {
    metrics_row r = row_at(s, 100.0);
    metrics_append(m, &r);
  }
  metrics_close(m);
  rc = metrics_read(path, &t);
  check_true("resumed run: rows up to 49 kept, 50..59 replaced, the stale 60..99 dropped",
             rc == MASA_OK && t.nrows == 60 && t.v[59 * t.ncols] == 59 &&
                 fabs(t.v[55 * t.ncols + 2] - (loss_at(55, 0) + 100)) < 1e-6 &&
                 fabs(t.v[49 * t.ncols + 2] - loss_at(49, 0)) < 1e-6);
  if (rc == MASA_OK) metrics_table_free(&t);

  // An interrupted write leaves a partial last line: ignored.
  FILE *f = fopen(path, "a");
  fputs("{\"step\": 60, \"epoch\": 2, \"loss\": 1.2", f);
  fclose(f);
  log_level lv = log_get_level();
  log_set_level(LOG_ERROR);
  rc = metrics_read(path, &t);
  log_set_level(lv);
  check_true("a partial last line is ignored", rc == MASA_OK && t.nrows == 60);
  if (rc == MASA_OK) metrics_table_free(&t);

  // A bad line in the middle is an error naming file:line.
  char bad[500];
  snprintf(bad, sizeof bad, "%s/bad.jsonl", g_root);
  f = fopen(bad, "w");
  fputs("{\"step\": 0, \"loss\": 1}\n{\"step\": 1, \"loss\": oops}\n{\"step\": 2, \"loss\": 1}\n", f);
  fclose(f);
  rc = metrics_read(bad, &t);
  printf("  expected error: %s\n", masa_errmsg());
  check_true("a bad line is an error naming file:line", rc == MASA_ERR && strstr(masa_errmsg(), "bad.jsonl:2"));
  f = fopen(bad, "w");
  fputs("{\"loss\": 1}\n", f);
  fclose(f);
  rc = metrics_read(bad, &t);
  check_true("a line without step is an error", rc == MASA_ERR && strstr(masa_errmsg(), "step"));
}

static void fill_table(metrics_table *t, int64_t n, int nterms) {
  memset(t, 0, sizeof *t);
  t->ncols = 1 + nterms;
  t->cols = malloc((size_t)t->ncols * sizeof(char *));
  t->cols[0] = strdup("step");
  static const char *names[4] = {"loss", "loss_track", "loss_track_aux", "lr"};
  for (int k = 0; k < nterms; k++) t->cols[1 + k] = strdup(names[k]);
  t->nrows = n;
  t->v = malloc((size_t)(n * t->ncols) * sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    t->v[i * t->ncols] = (double)(i * 10);
    for (int k = 0; k < nterms; k++) t->v[i * t->ncols + 1 + k] = loss_at(i, k) + 0.05;
  }
}

static void test_plot(void) {
  plot_opts o;
  plot_opts_default(&o);
  metrics_table t;
  fill_table(&t, 400, 4);  // 3 loss terms + lr (not a loss)
  int cols[8];
  int n = plot_loss_terms(&t, cols, 8);
  check_true("loss terms: the 3 columns starting with \"loss\", total first", n == 3 && cols[0] == 1);
  image_u8 a, b;
  int rc = plot_losses(&t, &o, &a);
  int w, h;
  plot_canvas_size(3, &o, &w, &h);
  check_true("3 terms: a 2 x 2 grid of 480 x 320 panels (960 x 640)", rc == MASA_OK && a.w == 960 && a.h == 640 && w == 960 && h == 640);
  static const uint8_t blue[3] = {31, 119, 180}, red[3] = {214, 39, 40}, green[3] = {44, 160, 44};
  static const uint8_t ink[3] = {40, 40, 40}, white[3] = {255, 255, 255};
  int nb = count_colour(&a, blue), nr = count_colour(&a, red), ng = count_colour(&a, green);
  int ni = count_colour(&a, ink), nw = count_colour(&a, white);
  printf("  pixels: blue %d red %d green %d ink %d white %d\n", nb, nr, ng, ni, nw);
  check_true("each term's EMA curve is drawn in its colour", nb > 400 && nr > 400 && ng > 400);
  check_true("text (titles and tick labels) is drawn", ni > 1000);
  check_true("the empty fourth panel stays white", count_colour(&a, white) > 0 && !memcmp(a.px + ((int64_t)500 * 960 + 700) * 3, white, 3));
  rc = plot_losses(&t, &o, &b);
  check_true("rendering is deterministic", rc == MASA_OK && !memcmp(a.px, b.px, (size_t)a.w * a.h * 3));
  image_free(&b);
  o.log_y = 1;
  rc = plot_losses(&t, &o, &b);
  check_true("log-y renders a different picture of the same size",
             rc == MASA_OK && b.w == 960 && b.h == 640 && memcmp(a.px, b.px, (size_t)a.w * a.h * 3) != 0 &&
                 count_colour(&b, blue) > 400);
  image_free(&b);
  o.log_y = 0;
  char png[500];
  snprintf(png, sizeof png, "%s/plot.png", g_root);
  check_true("PNG written", image_write_png(&a, png) == MASA_OK && access(png, R_OK) == 0);
  image_free(&a);
  metrics_table_free(&t);

  // Degenerate inputs: one row, constant values, all-NaN term, values <= 0 on a log axis.
  fill_table(&t, 1, 1);
  rc = plot_losses(&t, &o, &a);
  check_true("one row, one term: a single 480 x 320 panel", rc == MASA_OK && a.w == 480 && a.h == 320);
  image_free(&a);
  metrics_table_free(&t);
  fill_table(&t, 50, 2);
  for (int64_t i = 0; i < 50; i++) t.v[i * t.ncols + 1] = 2.5, t.v[i * t.ncols + 2] = NAN;
  t.v[10 * t.ncols + 1] = -1.0;
  rc = plot_losses(&t, &o, &a);
  check_true("constant and all-NaN terms render", rc == MASA_OK && a.w == 960 && a.h == 320);
  image_free(&a);
  o.log_y = 1;
  rc = plot_losses(&t, &o, &a);
  check_true("log-y with a negative value and constants renders", rc == MASA_OK);
  image_free(&a);
  o.log_y = 0;
  free(t.cols[1]), free(t.cols[2]);
  t.cols[1] = strdup("lr"), t.cols[2] = strdup("grad_norm");
  rc = plot_losses(&t, &o, &a);
  check_true("no loss column: an error", rc == MASA_ERR && strstr(masa_errmsg(), "no loss column"));
  metrics_table_free(&t);

  // A full official run: 37,500 steps render quickly.
  fill_table(&t, 37500, 3);
  double t0 = time_now();
  rc = plot_losses(&t, &o, &a);
  double dt = time_now() - t0;
  printf("  37,500 steps x 3 terms rendered in %.3f s\n", dt);
  check_true("37,500 steps render", rc == MASA_OK && dt < 5);
  if (rc == MASA_OK) image_free(&a);
  metrics_table_free(&t);
}

static void rm_tree(const char *dir) {
  char cmd[600];
  if (strncmp(dir, "/tmp/", 5) && !getenv("TMPDIR")) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
  test_begin("plot", 1);
  const char *tmp = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/masa_plot_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_root)) {
    check_true("mkdtemp", 0);
    return test_end();
  }
  test_log_round_trip();
  test_plot();
  rm_tree(g_root);
  return test_end();
}
