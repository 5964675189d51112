// Loss-curve rendering (see plot.h). Layout per panel: a title strip on top, y tick labels on the
// left, x tick labels and the "step" caption below, the plot area in between. Lines are 1-pixel
// Bresenham segments clipped to the plot area; the raw curve uses a pre-blended faint colour
// (painting it twice gives the same pixel), the EMA curve is drawn 2 pixels thick on top.
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "train/bitmap_font.h"

#define MARGIN_L 62
#define MARGIN_R 14
#define MARGIN_T 26
#define MARGIN_B 34
#define MAX_TICKS 24

static const uint8_t PALETTE[8][3] = {{31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {148, 103, 189},
                                      {255, 127, 14}, {23, 190, 207}, {140, 86, 75},  {227, 119, 194}};
static const uint8_t INK[3] = {40, 40, 40}, FRAME[3] = {150, 150, 150}, GRID[3] = {228, 228, 228};

void plot_opts_default(plot_opts *o) {
  o->log_y = 0;
  o->smooth = -1;
  o->panel_w = 480;
  o->panel_h = 320;
}

int plot_loss_terms(const metrics_table *t, int *cols, int max) {
  int n = 0, total = metrics_col(t, "loss");
  if (total >= 0 && n < max) cols[n++] = total;
  for (int c = 0; c < t->ncols && n < max; c++)
    if (c != total && !strncmp(t->cols[c], "loss", 4)) cols[n++] = c;
  return n;
}

void plot_canvas_size(int nterms, const plot_opts *o, int *w, int *h) {
  int cols = nterms >= 2 ? 2 : 1, rows = nterms > 0 ? (nterms + cols - 1) / cols : 1;
  *w = cols * o->panel_w;
  *h = rows * o->panel_h;
}

// ---------------------------------------------------------------- pixels and lines

typedef struct {
  int x0, y0, x1, y1;  // inclusive
} rect;

static void put(image_u8 *im, const rect *clip, int x, int y, const uint8_t c[3]) {
  if (x < clip->x0 || x > clip->x1 || y < clip->y0 || y > clip->y1) return;
  if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
  memcpy(im->px + ((int64_t)y * im->w + x) * 3, c, 3);
}

static void line(image_u8 *im, const rect *clip, int xa, int ya, int xb, int yb, const uint8_t c[3]) {
  int dx = abs(xb - xa), dy = -abs(yb - ya), sx = xa < xb ? 1 : -1, sy = ya < yb ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(im, clip, xa, ya, c);
    if (xa == xb && ya == yb) return;
    int e2 = 2 * err;
    if (e2 >= dy) err += dy, xa += sx;
    if (e2 <= dx) err += dx, ya += sy;
  }
}

static void text_right(image_u8 *im, int xr, int y, const char *s, const uint8_t c[3]) {
  font_draw_text(im, xr - font_text_width(s, 1), y, s, c, 1);
}

// ---------------------------------------------------------------- ticks

static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

static int linear_ticks(double lo, double hi, int target, double min_step, double *ticks, double *step_out) {
  double step = nice_step(hi - lo, target);
  if (step < min_step) step = min_step;
  int n = 0;
  for (double k = ceil(lo / step - 1e-9); n < MAX_TICKS; k++) {
    double v = k * step;
    if (v > hi + step * 1e-9) break;
    ticks[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
  }
  *step_out = step;
  return n;
}

// Ticks of a log10 axis over [lo, hi] (exponents): decades when there are enough, else
// 1-2-5 or 1..9 mantissas, else nice values in linear space. Returned as exponents.
static int log_ticks(double lo, double hi, double *ticks) {
  static const double sets[3][9] = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  static const int sizes[3] = {1, 3, 9}, want[3] = {3, 3, 2};
  for (int s = 0; s < 3; s++) {
    int n = 0, stride = 1;
    int d0 = (int)floor(lo), d1 = (int)ceil(hi);
    if (s == 0) stride = (d1 - d0 + 7) / 8 > 1 ? (d1 - d0 + 7) / 8 : 1;
    for (int d = d0; d <= d1; d++) {
      if (s == 0 && (d - d0) % stride) continue;
      for (int m = 0; m < sizes[s] && n < MAX_TICKS; m++) {
        double e = log10(sets[s][m]) + d;
        if (e >= lo - 1e-9 && e <= hi + 1e-9) ticks[n++] = e;
      }
    }
    if (n >= want[s] || s == 2) {
      if (n >= 2) return n;
    }
  }
  double lin[MAX_TICKS], step;
  int n = linear_ticks(pow(10.0, lo), pow(10.0, hi), 4, 0, lin, &step), k = 0;
  for (int i = 0; i < n; i++)
    if (lin[i] > 0) ticks[k++] = log10(lin[i]);
  return k;
}

static void fmt_value(char *buf, size_t n, double v, double step) {
  double a = fabs(v);
  if (v == 0)
    snprintf(buf, n, "0");
  else if (a >= 1e5 || a < 1e-3)
    snprintf(buf, n, "%.3g", v);
  else {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec > 6 ? 6 : dec, v);
  }
}

static void fmt_step(char *buf, size_t n, double v) {
  double a = fabs(v);
  if (a >= 1e6 && fmod(a, 1e5) == 0)
    snprintf(buf, n, "%gM", v / 1e6);
  else if (a >= 1e4 && fmod(a, 100) == 0)
    snprintf(buf, n, "%gk", v / 1e3);
  else
    snprintf(buf, n, "%.0f", v);
}

// ---------------------------------------------------------------- one panel

static void draw_panel(image_u8 *im, int px, int py, const plot_opts *o, const metrics_table *t,
                       int col, const uint8_t colour[3]) {
  const int64_t n = t->nrows;
  rect area = {px + MARGIN_L, py + MARGIN_T, px + o->panel_w - MARGIN_R, py + o->panel_h - MARGIN_B};
  rect whole = {px, py, px + o->panel_w - 1, py + o->panel_h - 1};
  double *fy = mallocCheck((size_t)(n ? n : 1) * sizeof(double));  // transformed raw
  double *fe = mallocCheck((size_t)(n ? n : 1) * sizeof(double));  // transformed EMA
  double xmin = INFINITY, xmax = -INFINITY, fmin = INFINITY, fmax = -INFINITY, last_ema = NAN;
  double acc = 0, decay = 1, a = o->smooth;
  if (a < 0) a = 1.0 - 1.0 / (n > 1000 ? (double)n / 100.0 : 10.0);
  for (int64_t i = 0; i < n; i++) {
    double x = t->v[i * t->ncols], y = t->v[i * t->ncols + col];
    fy[i] = fe[i] = NAN;
    if (!isfinite(x) || !isfinite(y) || (o->log_y && y <= 0)) continue;
    acc = a * acc + (1 - a) * y;  // debiased EMA: divide by the weight seen so far
    decay *= a;
    double ema = a > 0 ? acc / (1 - decay) : y;
    last_ema = ema;
    fy[i] = o->log_y ? log10(y) : y;
    fe[i] = o->log_y ? log10(ema) : ema;
    if (x < xmin) xmin = x;
    if (x > xmax) xmax = x;
    if (fy[i] < fmin) fmin = fy[i];
    if (fy[i] > fmax) fmax = fy[i];
  }

  // Title: the term's name, then its last smoothed value in the curve's colour.
  font_draw_text(im, area.x0, py + 6, t->cols[col], INK, 2);
  char buf[64];
  if (isfinite(last_ema)) {
    snprintf(buf, sizeof buf, "%s %.4g", a > 0 ? "ema" : "last", last_ema);
    font_draw_text(im, area.x0 + font_text_width(t->cols[col], 2) + 12, py + 13, buf, colour, 1);
  }
  for (int x = area.x0; x <= area.x1; x++) put(im, &whole, x, area.y0, FRAME), put(im, &whole, x, area.y1, FRAME);
  for (int y = area.y0; y <= area.y1; y++) put(im, &whole, area.x0, y, FRAME), put(im, &whole, area.x1, y, FRAME);
  if (!isfinite(xmin)) {
    font_draw_text(im, area.x0 + 10, area.y0 + 10, o->log_y ? "no positive finite values" : "no finite values", INK, 1);
    free(fy), free(fe);
    return;
  }
  if (xmax == xmin) xmin -= 1, xmax += 1;
  if (fmax == fmin) {
    double d = o->log_y ? 0.5 : (fabs(fmax) > 0 ? fabs(fmax) * 0.1 : 1.0);
    fmin -= d, fmax += d;
  } else {
    double pad = 0.05 * (fmax - fmin);
    fmin -= pad, fmax += pad;
  }
  rect inner = {area.x0 + 1, area.y0 + 1, area.x1 - 1, area.y1 - 1};
  double sx = (area.x1 - area.x0) / (xmax - xmin), sy = (area.y1 - area.y0) / (fmax - fmin);
#define MAPX(x) ((int)lround(area.x0 + ((x) - xmin) * sx))
#define MAPY(f) ((int)lround(area.y1 - ((f) - fmin) * sy))

  // Grid and ticks.
  double ticks[MAX_TICKS], step;
  int nt = o->log_y ? log_ticks(fmin, fmax, ticks) : linear_ticks(fmin, fmax, 5, 0, ticks, &step);
  for (int k = 0; k < nt; k++) {
    int y = MAPY(ticks[k]);
    for (int x = inner.x0; x <= inner.x1; x++) put(im, &inner, x, y, GRID);
    for (int x = area.x0 - 4; x < area.x0; x++) put(im, &whole, x, y, FRAME);
    if (o->log_y)
      snprintf(buf, sizeof buf, "%g", pow(10.0, ticks[k]));
    else
      fmt_value(buf, sizeof buf, ticks[k], step);
    text_right(im, area.x0 - 7, y - FONT_H / 2, buf, INK);
  }
  nt = linear_ticks(xmin, xmax, 6, 1, ticks, &step);
  for (int k = 0; k < nt; k++) {
    int x = MAPX(ticks[k]);
    for (int y = inner.y0; y <= inner.y1; y++) put(im, &inner, x, y, GRID);
    for (int y = area.y1 + 1; y <= area.y1 + 4; y++) put(im, &whole, x, y, FRAME);
    fmt_step(buf, sizeof buf, ticks[k]);
    font_draw_text(im, x - font_text_width(buf, 1) / 2, area.y1 + 7, buf, INK, 1);
  }
  font_draw_text(im, area.x1 - font_text_width("step", 1), area.y1 + 19, "step", INK, 1);
  if (o->log_y) font_draw_text(im, px + 4, area.y1 + 19, "log y", INK, 1);

  // Raw values faint, then the EMA on top.
  uint8_t faint[3];
  for (int c = 0; c < 3; c++) faint[c] = (uint8_t)(255 - (255 - colour[c]) * 35 / 100);
  for (int pass = 0; pass < (a > 0 ? 2 : 1); pass++) {
    const double *f = pass == 0 ? fy : fe;
    const uint8_t *c = pass == 0 ? faint : colour;
    int64_t prev = -1;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(f[i])) {  // a gap where a value is missing, null (skipped step) or <= 0 on log y
        prev = -1;
        continue;
      }
      int x = MAPX(t->v[i * t->ncols]), y = MAPY(f[i]);
      if (prev < 0) {
        put(im, &inner, x, y, c);
      } else {
        int xp = MAPX(t->v[prev * t->ncols]), yp = MAPY(f[prev]);
        line(im, &inner, xp, yp, x, y, c);
        if (pass == 1) line(im, &inner, xp, yp + 1, x, y + 1, c);
      }
      prev = i;
    }
  }
#undef MAPX
#undef MAPY
  free(fy), free(fe);
}

int plot_losses(const metrics_table *t, const plot_opts *o, image_u8 *out) {
  int cols[64];
  int n = plot_loss_terms(t, cols, 64);
  if (n == 0) return masa_error("no loss column (a key starting with \"loss\") in the metrics");
  if (o->panel_w < 160 || o->panel_h < 120)
    return masa_error("plot panels must be at least 160 x 120 pixels, got %d x %d", o->panel_w, o->panel_h);
  if (!(o->smooth < 1)) return masa_error("smoothing must be below 1, got %g", o->smooth);
  int w, h;
  plot_canvas_size(n, o, &w, &h);
  *out = image_alloc(h, w);
  memset(out->px, 255, (size_t)w * h * 3);
  int ncol = n >= 2 ? 2 : 1;
  for (int k = 0; k < n; k++)
    draw_panel(out, (k % ncol) * o->panel_w, (k / ncol) * o->panel_h, o, t, cols[k], PALETTE[k % 8]);
  return MASA_OK;
}

int plot_run(const char *run_dir, const char *out_path, const plot_opts *o, int *nterms,
             int64_t *nsteps) {
  char in[1200], out[1200];
  snprintf(in, sizeof in, "%s/metrics.jsonl", run_dir);
  snprintf(out, sizeof out, "%s", out_path ? out_path : "");
  if (!out_path) snprintf(out, sizeof out, "%s/loss.png", run_dir);
  metrics_table t;
  if (metrics_read(in, &t) != MASA_OK) return MASA_ERR;
  if (t.nrows == 0) {
    metrics_table_free(&t);
    return masa_error("%s: no metrics yet (empty file)", in);
  }
  image_u8 im;
  if (plot_losses(&t, o, &im) != MASA_OK) {
    char why[1024];
    snprintf(why, sizeof why, "%s", masa_errmsg());
    metrics_table_free(&t);
    return masa_error("%s: %s", in, why);
  }
  int cols[64];
  if (nterms) *nterms = plot_loss_terms(&t, cols, 64);
  if (nsteps) *nsteps = t.nrows;
  metrics_table_free(&t);
  int rc = image_write_png(&im, out);
  image_free(&im);
  return rc;
}
