// Colour-histogram appearance embedder (see embedder.h).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "eval/embedder.h"

void embedder_free(embedder *e) {
  if (e && e->free) e->free(e);
  if (e) memset(e, 0, sizeof *e);
}

int histogram_embedder_opts_from_config(const config *cfg, histogram_embedder_opts *o) {
  o->bins = (int)config_int(cfg, "track.histogram.bins");
  o->grid = (int)config_int(cfg, "track.histogram.grid");
  o->scale = config_float(cfg, "track.histogram.scale");
  o->inner = config_float(cfg, "track.histogram.inner");
  if (o->bins < 1 || o->bins > 16) return masa_error("track.histogram.bins: expected 1..16, got %d", o->bins);
  if (o->grid < 1 || o->grid > 8) return masa_error("track.histogram.grid: expected 1..8, got %d", o->grid);
  if (!(o->scale > 0)) return masa_error("track.histogram.scale: expected > 0, got %g", o->scale);
  if (!(o->inner > 0 && o->inner <= 1)) return masa_error("track.histogram.inner: expected in (0, 1], got %g", o->inner);
  return MASA_OK;
}

typedef struct {
  histogram_embedder_opts o;
  double *hist;  // (dim) counts of one box
} histogram_ctx;

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static int histogram_embed(embedder *e, const image_u8 *im, int n, const float *boxes, float *out) {
  histogram_ctx *c = e->ctx;
  int b = c->o.bins, g = c->o.grid, nb = b * b * b, dim = e->dim;
  for (int i = 0; i < n; i++) {
    const float *bx = boxes + 4 * i;
    float *v = out + (int64_t)i * dim;
    memset(c->hist, 0, (size_t)dim * sizeof(double));
    // The central `inner` part of the box (less background); pixels whose square [x, x+1)
    // overlaps it, clipped to the image.
    float mx = (1.0f - (float)c->o.inner) * 0.5f * (bx[2] - bx[0]), my = (1.0f - (float)c->o.inner) * 0.5f * (bx[3] - bx[1]);
    int x0 = clampi((int)floor(bx[0] + mx), 0, im->w), x1 = clampi((int)ceil(bx[2] - mx), 0, im->w);
    int y0 = clampi((int)floor(bx[1] + my), 0, im->h), y1 = clampi((int)ceil(bx[3] - my), 0, im->h);
    if (!(bx[2] > bx[0]) || !(bx[3] > bx[1]) || x1 <= x0 || y1 <= y0) {
      memset(v, 0, (size_t)dim * sizeof(float));
      continue;
    }
    int bw = x1 - x0, bh = y1 - y0;
    for (int y = y0; y < y1; y++) {
      int cy = (int)((int64_t)(y - y0) * g / bh);
      const uint8_t *row = im->px + ((int64_t)y * im->w) * 3;
      for (int x = x0; x < x1; x++) {
        int cx = (int)((int64_t)(x - x0) * g / bw);
        const uint8_t *p = row + 3 * x;
        int bin = ((p[0] * b >> 8) * b + (p[1] * b >> 8)) * b + (p[2] * b >> 8);
        c->hist[(cy * g + cx) * nb + bin] += 1;
      }
    }
    double norm2 = 0;
    for (int cell = 0; cell < g * g; cell++) {
      double *h = c->hist + cell * nb, sum = 0;
      for (int k = 0; k < nb; k++) sum += h[k];
      if (sum <= 0) continue;  // a box narrower than the grid: empty cells stay zero
      for (int k = 0; k < nb; k++) {
        h[k] = sqrt(h[k] / sum);
        norm2 += h[k] * h[k];
      }
    }
    double f = norm2 > 0 ? c->o.scale / sqrt(norm2) : 0;
    for (int k = 0; k < dim; k++) v[k] = (float)(c->hist[k] * f);
  }
  return MASA_OK;
}

static void histogram_free(embedder *e) {
  histogram_ctx *c = e->ctx;
  if (c) free(c->hist);
  free(c);
  e->ctx = NULL;
}

int embedder_histogram_create(const histogram_embedder_opts *o, embedder *out) {
  memset(out, 0, sizeof *out);
  if (o->bins < 1 || o->bins > 16 || o->grid < 1 || o->grid > 8 || !(o->scale > 0) || !(o->inner > 0 && o->inner <= 1))
    return masa_error("histogram embedder: bins %d (1..16), grid %d (1..8), scale %g (> 0), inner %g ((0, 1])", o->bins,
                      o->grid, o->scale, o->inner);
  histogram_ctx *c = callocCheck(1, sizeof *c);
  c->o = *o;
  out->dim = o->grid * o->grid * o->bins * o->bins * o->bins;
  c->hist = mallocCheck((size_t)out->dim * sizeof(double));
  out->ctx = c;
  out->embed = histogram_embed;
  out->free = histogram_free;
  return MASA_OK;
}
