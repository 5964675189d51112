// Synthetic SA-1B and MOTChallenge data (synth.h).
// Conventions: pixel (x, y) is sampled at its centre (x + 0.5, y + 0.5). Object shapes are
// defined in a normalised local frame (rotation, radius 1, aspect on the local y axis); textures
// live in that frame too, so they move, rotate and scale with the object.
// Random streams: every draw is rng_*(seed, stream, index) with stream = (namespace << 56) |
// (image or sequence << 8) | purpose, and index = object * 256 + parameter, so each value is
// addressed, not sequenced, and output never depends on threads or draw order.
#include "data/synth.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/rle.h"
#include "data/tar.h"

#define PI 3.14159265358979323846
#define MAXV 12
#define NOISE_N 16
#define TEXELS 40.0  // texture units per object radius

enum { NS_IMAGE = 1, NS_VIDEO = 2 };
enum { P_SCENE = 1, P_OBJECT = 2, P_NOISE = 3, P_BG_NOISE = 4, P_META = 5, P_MOTION = 6, P_DET = 7 };
enum { SHAPE_ELLIPSE, SHAPE_POLYGON, SHAPE_BLOB, N_SHAPES };
enum { TEX_STRIPES, TEX_CHECKER, TEX_NOISE, TEX_DOTS, TEX_RINGS, N_TEX };

static uint64_t stream_of(int ns, int64_t item, int purpose) {
  return ((uint64_t)ns << 56) | ((uint64_t)item << 8) | (uint64_t)purpose;
}

// ---- text buffer ------------------------------------------------------------------------------

typedef struct {
  char *s;
  size_t n, cap;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
    va_end(ap);
    masa_assert(k >= 0);
    if (b->s && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + (size_t)k + 1) cap *= 2;
    char *ns = mallocCheck(cap);
    if (b->n) memcpy(ns, b->s, b->n);
    free(b->s);
    b->s = ns;
    b->cap = cap;
  }
}

// ---- objects ----------------------------------------------------------------------------------

typedef struct {
  int shape;
  double cx, cy, scale, aspect, cosa, sina;
  int nv;
  double va[MAXV + 1], vx[MAXV + 1], vy[MAXV + 1];  // polygon vertices (closed: [nv] = [0])
  double ha[3], hp[3];                              // blob harmonics 2, 3, 4
  double maxr;
  float c0[3], c1[3];
  int pattern;
  double period, tcos, tsin, phase;
  float noise[NOISE_N * NOISE_N];
} synth_obj;

typedef struct {
  uint64_t seed, stream;
  uint64_t base;
} draw;

static double U(const draw *d, int p) { return rng_uniform(d->seed, d->stream, d->base + (uint64_t)p); }

static void hsv_to_rgb(double hh, double s, double v, float out[3]) {
  double h6 = fmod(hh, 1.0) * 6;
  int i = (int)h6;
  double f = h6 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r, g, b;
  switch (i % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  out[0] = (float)(255 * r);
  out[1] = (float)(255 * g);
  out[2] = (float)(255 * b);
}

static double value_noise(const float *tab, double x, double y) {
  double fx = floor(x), fy = floor(y), ax = x - fx, ay = y - fy;
  int ix = (int)(int64_t)fx & (NOISE_N - 1), iy = (int)(int64_t)fy & (NOISE_N - 1);
  int jx = (ix + 1) & (NOISE_N - 1), jy = (iy + 1) & (NOISE_N - 1);
  ax = ax * ax * (3 - 2 * ax);
  ay = ay * ay * (3 - 2 * ay);
  double top = tab[iy * NOISE_N + ix] * (1 - ax) + tab[iy * NOISE_N + jx] * ax;
  double bot = tab[jy * NOISE_N + ix] * (1 - ax) + tab[jy * NOISE_N + jx] * ax;
  return top * (1 - ay) + bot * ay;
}

// Shape and appearance of object `obj` (position, size and rotation are set by the caller).
static void obj_init(synth_obj *o, uint64_t seed, uint64_t stream, uint64_t noise_stream, int64_t obj) {
  memset(o, 0, sizeof *o);
  draw d = {seed, stream, (uint64_t)obj * 256};
  o->shape = (int)(U(&d, 0) * N_SHAPES);
  o->aspect = exp((U(&d, 1) - 0.5) * 1.2);
  o->maxr = 1;
  if (o->shape == SHAPE_POLYGON) {
    o->nv = 3 + (int)(U(&d, 3) * 8);
    o->maxr = 0;
    for (int i = 0; i < o->nv; i++) {
      o->va[i] = 2 * PI * (i + 0.8 * (U(&d, 10 + i) - 0.5)) / o->nv;
      double r = 0.55 + 0.45 * U(&d, 30 + i);
      o->vx[i] = r * cos(o->va[i]);
      o->vy[i] = r * sin(o->va[i]);
      if (r > o->maxr) o->maxr = r;
    }
    o->va[o->nv] = o->va[0] + 2 * PI;
    o->vx[o->nv] = o->vx[0];
    o->vy[o->nv] = o->vy[0];
  } else if (o->shape == SHAPE_BLOB) {
    for (int k = 0; k < 3; k++) {
      o->ha[k] = 0.3 * U(&d, 50 + k) / (k + 1);
      o->hp[k] = 2 * PI * U(&d, 53 + k);
      o->maxr += o->ha[k];
    }
  }
  double hue = U(&d, 60);
  hsv_to_rgb(hue, 0.3 + 0.7 * U(&d, 61), 0.35 + 0.65 * U(&d, 62), o->c0);
  hsv_to_rgb(hue + 0.15 + 0.7 * U(&d, 63), 0.2 + 0.8 * U(&d, 64), 0.2 + 0.8 * U(&d, 65), o->c1);
  o->pattern = (int)(U(&d, 70) * N_TEX);
  o->period = 4 + 14 * U(&d, 71);
  double ta = PI * U(&d, 72);
  o->tcos = cos(ta);
  o->tsin = sin(ta);
  o->phase = 2 * PI * U(&d, 73);
  for (int i = 0; i < NOISE_N * NOISE_N; i++)
    o->noise[i] = rng_uniform(seed, noise_stream, (uint64_t)obj * 256 + (uint64_t)i);
}

static void obj_place(synth_obj *o, double cx, double cy, double scale, double angle) {
  o->cx = cx;
  o->cy = cy;
  o->scale = scale;
  o->cosa = cos(angle);
  o->sina = sin(angle);
}

// Conservative pixel extent [x0, x1] x [y0, y1] (may lie outside the image).
static void obj_extent(const synth_obj *o, int64_t *x0, int64_t *y0, int64_t *x1, int64_t *y1) {
  double r = o->scale * o->maxr * (o->aspect > 1 ? o->aspect : 1) + 1;
  *x0 = (int64_t)floor(o->cx - r);
  *x1 = (int64_t)ceil(o->cx + r);
  *y0 = (int64_t)floor(o->cy - r);
  *y1 = (int64_t)ceil(o->cy + r);
}

// 1 when pixel (x, y) is inside; local coordinates (u, v) and relative radius rr in [0, 1].
static int obj_inside(const synth_obj *o, int64_t x, int64_t y, double *pu, double *pv, double *rr) {
  double dx = (double)x + 0.5 - o->cx, dy = (double)y + 0.5 - o->cy;
  double u = (dx * o->cosa + dy * o->sina) / o->scale;
  double v = (-dx * o->sina + dy * o->cosa) / (o->scale * o->aspect);
  double r2 = u * u + v * v;
  if (r2 > o->maxr * o->maxr) return 0;
  double r = sqrt(r2), bound = 1;
  if (o->shape != SHAPE_ELLIPSE && r > 0) {
    double th = atan2(v, u);
    if (o->shape == SHAPE_BLOB) {
      for (int k = 0; k < 3; k++) bound += o->ha[k] * cos((k + 2) * th + o->hp[k]);
    } else {
      if (th < o->va[0]) th += 2 * PI;
      int i = 0;
      while (i < o->nv - 1 && th >= o->va[i + 1]) i++;
      // Distance along the ray at angle th to the edge (v_i, v_i+1).
      double ex = o->vx[i + 1] - o->vx[i], ey = o->vy[i + 1] - o->vy[i];
      double c = cos(th), s = sin(th);
      double den = c * ey - s * ex;
      bound = den != 0 ? (o->vx[i] * ey - o->vy[i] * ex) / den : 0;
    }
  }
  if (r > bound) return 0;
  *pu = u;
  *pv = v;
  *rr = bound > 0 ? r / bound : 0;
  return 1;
}

static void obj_colour(const synth_obj *o, double u, double v, double rr, float out[3]) {
  double tu = u * TEXELS, tv = v * TEXELS * o->aspect;  // isotropic in pixels
  double a = tu * o->tcos + tv * o->tsin, b = -tu * o->tsin + tv * o->tcos, t;
  switch (o->pattern) {
    case TEX_STRIPES: t = 0.5 + 0.5 * sin(2 * PI * a / o->period + o->phase); break;
    case TEX_CHECKER: t = (double)(((int64_t)floor(a / o->period) + (int64_t)floor(b / o->period)) & 1); break;
    case TEX_NOISE: t = value_noise(o->noise, a / o->period * 2, b / o->period * 2); break;
    case TEX_DOTS: {
      double fa = a / o->period - floor(a / o->period) - 0.5, fb = b / o->period - floor(b / o->period) - 0.5;
      t = fa * fa + fb * fb < 0.09 ? 1 : 0;
      break;
    }
    default: t = 0.5 + 0.5 * sin(2 * PI * sqrt(tu * tu + tv * tv) / o->period + o->phase); break;
  }
  double detail = value_noise(o->noise, tu / 3 + 7.5, tv / 3 + 3.25) - 0.5;
  double shade = 1 - 0.35 * rr * rr;
  for (int c = 0; c < 3; c++) out[c] = (float)((o->c0[c] * (1 - t) + o->c1[c] * t) * shade + 40 * detail);
}

// ---- background -------------------------------------------------------------------------------

typedef struct {
  float c0[3], c1[3];
  float noise[NOISE_N * NOISE_N];
  double cell, fine, scos, ssin, speriod, samp, gx, gy;
  int h, w;
} background;

static void bg_init(background *bg, uint64_t seed, uint64_t stream, uint64_t noise_stream, int h, int w) {
  draw d = {seed, stream, 0};
  double hue = U(&d, 0);
  hsv_to_rgb(hue, 0.1 + 0.5 * U(&d, 1), 0.25 + 0.6 * U(&d, 2), bg->c0);
  hsv_to_rgb(hue + 0.3 * (U(&d, 3) - 0.5), 0.1 + 0.6 * U(&d, 4), 0.25 + 0.7 * U(&d, 5), bg->c1);
  int m = h < w ? h : w;
  bg->cell = m / (2.0 + 5 * U(&d, 6));
  bg->fine = 2 + 6 * U(&d, 7);
  double a = PI * U(&d, 8);
  bg->scos = cos(a);
  bg->ssin = sin(a);
  bg->speriod = 6 + 30 * U(&d, 9);
  bg->samp = U(&d, 10) < 0.5 ? 0 : 6 + 14 * U(&d, 11);
  bg->gx = 60 * (U(&d, 12) - 0.5);
  bg->gy = 60 * (U(&d, 13) - 0.5);
  bg->h = h;
  bg->w = w;
  for (int i = 0; i < NOISE_N * NOISE_N; i++) bg->noise[i] = rng_uniform(seed, noise_stream, (uint64_t)i);
}

static void bg_colour(const background *bg, int64_t x, int64_t y, float out[3]) {
  double px = x + 0.5, py = y + 0.5;
  double n1 = value_noise(bg->noise, px / bg->cell, py / bg->cell);
  double n2 = value_noise(bg->noise, px / bg->fine + 3.5, py / bg->fine + 9.25);
  double st = bg->samp * sin(2 * PI * (px * bg->scos + py * bg->ssin) / bg->speriod);
  double gr = bg->gx * px / bg->w + bg->gy * py / bg->h;
  for (int c = 0; c < 3; c++)
    out[c] = (float)((bg->c0[c] * (1 - n1) + bg->c1[c] * n1) * (0.85 + 0.3 * n2) + st + gr);
}

static uint8_t to_u8(float v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5f)); }

// Paints objects[order[0..n)] over the background (later ones occlude earlier ones); owner gets
// the index of the object seen at each pixel, -1 for background.
static void render(const background *bg, const synth_obj *objs, const int *order, int n, image_u8 *img,
                   int32_t *owner) {
  const int64_t h = img->h, w = img->w;
  float c[3];
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      bg_colour(bg, x, y, c);
      for (int k = 0; k < 3; k++) img->px[(y * w + x) * 3 + k] = to_u8(c[k]);
      owner[y * w + x] = -1;
    }
  for (int i = 0; i < n; i++) {
    const synth_obj *o = &objs[order[i]];
    int64_t x0, y0, x1, y1;
    obj_extent(o, &x0, &y0, &x1, &y1);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > w - 1) x1 = w - 1;
    if (y1 > h - 1) y1 = h - 1;
    for (int64_t y = y0; y <= y1; y++)
      for (int64_t x = x0; x <= x1; x++) {
        double u, v, rr;
        if (!obj_inside(o, x, y, &u, &v, &rr)) continue;
        obj_colour(o, u, v, rr, c);
        for (int k = 0; k < 3; k++) img->px[(y * w + x) * 3 + k] = to_u8(c[k]);
        owner[y * w + x] = order[i];
      }
  }
}

// RLE of the pixels owned by object k, scanning only its extent (column-major positions).
static void owner_rle(const int32_t *owner, int64_t h, int64_t w, int k, const synth_obj *o, rle *out) {
  int64_t x0, y0, x1, y1;
  obj_extent(o, &x0, &y0, &x1, &y1);
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > w - 1) x1 = w - 1;
  if (y1 > h - 1) y1 = h - 1;
  int64_t cap = 16, m = 0, end = 0;  // end: column-major position after the last 1-run
  uint32_t *cnts = mallocCheck((size_t)cap * sizeof(uint32_t));
  int64_t run_start = -1, last = -2;
  for (int64_t x = x0; x <= x1; x++)
    for (int64_t y = y0; y <= y1; y++) {
      if (owner[y * w + x] != k) continue;
      int64_t p = x * h + y;
      if (p == last + 1 && run_start >= 0) {
        last = p;
        continue;
      }
      if (run_start >= 0) {  // close the previous 1-run
        if (m + 2 > cap) {
          uint32_t *nc = mallocCheck((size_t)(cap * 2) * sizeof(uint32_t));
          memcpy(nc, cnts, (size_t)m * sizeof(uint32_t));
          free(cnts);
          cnts = nc;
          cap *= 2;
        }
        cnts[m++] = (uint32_t)(run_start - end);
        cnts[m++] = (uint32_t)(last + 1 - run_start);
        end = last + 1;
      }
      run_start = last = p;
    }
  if (m + 3 > cap) {
    uint32_t *nc = mallocCheck((size_t)(cap + 3) * sizeof(uint32_t));
    memcpy(nc, cnts, (size_t)m * sizeof(uint32_t));
    free(cnts);
    cnts = nc;
  }
  if (run_start >= 0) {
    cnts[m++] = (uint32_t)(run_start - end);
    cnts[m++] = (uint32_t)(last + 1 - run_start);
    end = last + 1;
  }
  cnts[m++] = (uint32_t)(h * w - end);
  out->h = h;
  out->w = w;
  out->m = m;
  out->cnts = cnts;
}

// ---- SA-1B images -----------------------------------------------------------------------------

void synth_default_opts(synth_opts *o) {
  *o = (synth_opts){.seed = 0, .n_images = 16, .h = 256, .w = 320, .objects_min = 8,
                    .objects_max = 24, .min_area = 16, .jpeg_quality = 90, .per_shard = 0};
}

static int check_opts(int h, int w, int omin, int omax, int quality) {
  if (h < 16 || w < 16 || (int64_t)h * w > (1LL << 26))
    return masa_error("synth: image size %d x %d must be at least 16 x 16 and at most 2^26 pixels", h, w);
  if (omin < 0 || omax < omin || omax > 9999)
    return masa_error("synth: objects %d-%d must satisfy 0 <= min <= max <= 9999", omin, omax);
  if (quality < 1 || quality > 100) return masa_error("synth: JPEG quality %d not in 1..100", quality);
  return MASA_OK;
}

typedef struct {
  int k;
  double key;
} sort_key;

static int cmp_key_desc(const void *a, const void *b) {
  const sort_key *p = a, *q = b;
  if (p->key != q->key) return p->key < q->key ? 1 : -1;
  return p->k - q->k;
}

int synth_sa1b_sample(const synth_opts *o, int64_t index, uint8_t **jpeg, size_t *jpeg_n,
                      char **json, size_t *json_n) {
  *jpeg = NULL;
  *json = NULL;
  if (check_opts(o->h, o->w, o->objects_min, o->objects_max, o->jpeg_quality) != MASA_OK) return MASA_ERR;
  const int h = o->h, w = o->w, m = h < w ? h : w;
  const uint64_t s_scene = stream_of(NS_IMAGE, index, P_SCENE), s_obj = stream_of(NS_IMAGE, index, P_OBJECT),
                 s_noise = stream_of(NS_IMAGE, index, P_NOISE), s_meta = stream_of(NS_IMAGE, index, P_META);
  background bg;
  bg_init(&bg, o->seed, s_scene, stream_of(NS_IMAGE, index, P_BG_NOISE), h, w);
  int n = o->objects_min + (int)rng_below(o->seed, s_scene, 100, (uint32_t)(o->objects_max - o->objects_min + 1));
  synth_obj *objs = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *objs);
  sort_key *keys = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *keys);
  double smin = fmax(3.0, 0.02 * m), smax = 0.28 * m;
  for (int k = 0; k < n; k++) {
    obj_init(&objs[k], o->seed, s_obj, s_noise, k);
    draw d = {o->seed, s_obj, (uint64_t)k * 256};
    double scale = exp(log(smin) + U(&d, 100) * (log(smax) - log(smin)));
    obj_place(&objs[k], w * (1.1 * U(&d, 101) - 0.05), h * (1.1 * U(&d, 102) - 0.05), scale, 2 * PI * U(&d, 103));
    // Mostly large objects behind small ones, with enough shuffling for real occlusions.
    keys[k] = (sort_key){k, log(scale) + 0.7 * rng_normal(o->seed, s_obj, (uint64_t)k * 256 + 104)};
  }
  qsort(keys, (size_t)n, sizeof *keys, cmp_key_desc);
  int *order = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int));
  for (int i = 0; i < n; i++) order[i] = keys[i].k;
  image_u8 img = image_alloc(h, w);
  int32_t *owner = mallocCheck((size_t)h * w * sizeof(int32_t));
  render(&bg, objs, order, n, &img, owner);
  int rc = image_encode_jpeg(&img, o->jpeg_quality, jpeg, jpeg_n);
  strbuf js = {0};
  const int64_t image_id = index + 1;
  sb_printf(&js, "{\"image\": {\"image_id\": %lld, \"width\": %d, \"height\": %d, \"file_name\": \"sa_%lld.jpg\"}, "
            "\"annotations\": [", (long long)image_id, w, h, (long long)image_id);
  int first = 1;
  for (int i = 0; i < n && rc == MASA_OK; i++) {  // in drawing order
    int k = order[i];
    rle r;
    owner_rle(owner, h, w, k, &objs[k], &r);
    int64_t area = rle_area(&r);
    if (area < o->min_area || area == 0) {
      rle_free(&r);
      continue;
    }
    double box[4];
    rle_bbox(&r, box);
    // The visible pixel in the middle of the mask (column-major): a point inside it.
    int64_t want = area / 2, p = 0, px = 0, py = 0;
    for (int64_t j = 0; j < r.m; j++) {
      if ((j & 1) && want < (int64_t)r.cnts[j]) {
        px = (p + want) / h;
        py = (p + want) % h;
        break;
      }
      if (j & 1) want -= r.cnts[j];
      p += r.cnts[j];
    }
    char *raw = rle_to_string(&r), *counts = mallocCheck(2 * strlen(raw) + 1), *q = counts;
    for (const char *c = raw; *c; c++) {  // the RLE alphabet (48..111) holds one JSON escape: '\\'
      if (*c == '\\') *q++ = '\\';
      *q++ = *c;
    }
    *q = 0;
    free(raw);
    draw d = {o->seed, s_meta, (uint64_t)k * 256};
    sb_printf(&js, "%s{\"id\": %lld, \"segmentation\": {\"size\": [%d, %d], \"counts\": \"%s\"}, "
              "\"bbox\": [%.0f, %.0f, %.0f, %.0f], \"area\": %lld, \"predicted_iou\": %.6f, "
              "\"stability_score\": %.6f, \"crop_box\": [0, 0, %d, %d], \"point_coords\": [[%.2f, %.2f]]}",
              first ? "" : ", ", (long long)(image_id * 10000 + k + 1), h, w, counts, box[0], box[1],
              box[2] - 1, box[3] - 1, (long long)area, 0.85 + 0.15 * U(&d, 0), 0.9 + 0.1 * U(&d, 1), w, h,
              px + 0.5, py + 0.5);
    first = 0;
    free(counts);
    rle_free(&r);
  }
  sb_printf(&js, "]}\n");
  image_free(&img);
  free(owner);
  free(order);
  free(keys);
  free(objs);
  if (rc != MASA_OK) {
    free(js.s);
    free(*jpeg);
    *jpeg = NULL;
    return MASA_ERR;
  }
  *json = js.s;
  *json_n = js.n;
  return MASA_OK;
}

int make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return masa_error("%s: cannot create folder (%s)", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) return masa_error("%s: cannot create folder (%s)", buf, strerror(errno));
  return MASA_OK;
}

static int write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return masa_error("%s: cannot create file (%s)", path, strerror(errno));
  int bad = fwrite(data, 1, n, f) != n;
  if (fclose(f) != 0) bad = 1;
  if (bad) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}

int synth_sa1b(const synth_opts *o, const char *out_dir) {
  if (check_opts(o->h, o->w, o->objects_min, o->objects_max, o->jpeg_quality) != MASA_OK) return MASA_ERR;
  if (o->n_images < 0) return masa_error("synth: image count %lld is negative", (long long)o->n_images);
  if (make_dirs(out_dir) != MASA_OK) return MASA_ERR;
  // Chunks: a shard at a time (written in order), or 64 images for plain files.
  const int64_t chunk = o->per_shard > 0 ? o->per_shard : 64;
  uint8_t **jpg = mallocCheck((size_t)chunk * sizeof(uint8_t *));
  char **js = mallocCheck((size_t)chunk * sizeof(char *));
  size_t *jn = mallocCheck((size_t)chunk * sizeof(size_t)), *sn = mallocCheck((size_t)chunk * sizeof(size_t));
  int *ok = mallocCheck((size_t)chunk * sizeof(int));
  char err[1024] = {0};
  progress pg;
  progress_begin(&pg, "synth", o->n_images, "images");
  int rc = MASA_OK;
  for (int64_t c0 = 0, shard = 0; c0 < o->n_images && rc == MASA_OK; c0 += chunk, shard++) {
    int64_t nc = o->n_images - c0 < chunk ? o->n_images - c0 : chunk;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < nc; i++) {
      ok[i] = synth_sa1b_sample(o, c0 + i, &jpg[i], &jn[i], &js[i], &sn[i]) == MASA_OK;
      if (ok[i] && o->per_shard <= 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/sa_%lld.jpg", out_dir, (long long)(c0 + i + 1));
        ok[i] = write_file(path, jpg[i], jn[i]) == MASA_OK;
        snprintf(path, sizeof path, "%s/sa_%lld.json", out_dir, (long long)(c0 + i + 1));
        if (ok[i]) ok[i] = write_file(path, js[i], sn[i]) == MASA_OK;
      }
      if (!ok[i]) {
#pragma omp critical(synth_err)
        if (!err[0]) snprintf(err, sizeof err, "%s", masa_errmsg());
      }
    }
    for (int64_t i = 0; i < nc; i++)
      if (!ok[i]) rc = MASA_ERR;
    if (rc == MASA_OK && o->per_shard > 0) {
      char path[4200], name[64];
      snprintf(path, sizeof path, "%s/sa_%06lld.tar", out_dir, (long long)shard);
      tar_writer tw;
      rc = tar_writer_open(&tw, path);
      for (int64_t i = 0; i < nc && rc == MASA_OK; i++) {
        snprintf(name, sizeof name, "sa_%lld.jpg", (long long)(c0 + i + 1));
        rc = tar_writer_add(&tw, name, jpg[i], jn[i]);
        snprintf(name, sizeof name, "sa_%lld.json", (long long)(c0 + i + 1));
        if (rc == MASA_OK) rc = tar_writer_add(&tw, name, js[i], sn[i]);
      }
      if (tw.f && tar_writer_close(&tw) != MASA_OK) rc = MASA_ERR;
      if (rc != MASA_OK) snprintf(err, sizeof err, "%s", masa_errmsg());
    }
    for (int64_t i = 0; i < nc; i++) {
      if (ok[i]) {
        free(jpg[i]);
        free(js[i]);
      }
    }
    progress_update(&pg, c0 + nc, NULL);
  }
  progress_end(&pg, o->n_images);
  free(jpg);
  free(js);
  free(jn);
  free(sn);
  free(ok);
  if (rc != MASA_OK) return masa_error("%s", err);
  return MASA_OK;
}

// ---- MOTChallenge sequences -------------------------------------------------------------------

void synth_video_default_opts(synth_video_opts *o) {
  *o = (synth_video_opts){.seed = 0, .n_seqs = 2, .n_frames = 60, .h = 256, .w = 320,
                          .objects_min = 4, .objects_max = 8, .fps = 30, .jpeg_quality = 90};
}

typedef struct {
  double x0, y0, vx, vy, ax, ay, wx, wy, px, py;  // position: p0 + v t + A sin(w t + phase)
  double s0, sa, sw, sp;                          // scale: s0 (1 + sa sin(sw t + sp))
  double r0, rw;                                  // rotation: r0 + rw t
  double z0, za, zw, zp;                          // depth: larger is nearer
} motion;

// Folds x into [lo, hi] by reflection at the ends (a bouncing path in closed form).
static double reflect(double x, double lo, double hi) {
  double span = hi - lo, m = fmod(x - lo, 2 * span);
  if (m < 0) m += 2 * span;
  return lo + (m <= span ? m : 2 * span - m);
}

static void motion_init(motion *mv, uint64_t seed, uint64_t stream, int k, int h, int w) {
  draw d = {seed, stream, (uint64_t)k * 256};
  double sz = (h < w ? h : w), speed = sz / 256.0;
  mv->x0 = w * U(&d, 0);
  mv->y0 = h * U(&d, 1);
  double dir = 2 * PI * U(&d, 2), v = speed * (0.4 + 2.6 * U(&d, 3));
  mv->vx = v * cos(dir);
  mv->vy = v * sin(dir);
  mv->ax = speed * 12 * U(&d, 4);
  mv->ay = speed * 12 * U(&d, 5);
  mv->wx = 0.02 + 0.08 * U(&d, 6);
  mv->wy = 0.02 + 0.08 * U(&d, 7);
  mv->px = 2 * PI * U(&d, 8);
  mv->py = 2 * PI * U(&d, 9);
  mv->s0 = sz * (0.06 + 0.12 * U(&d, 10));
  mv->sa = 0.15 * U(&d, 11);
  mv->sw = 0.01 + 0.05 * U(&d, 12);
  mv->sp = 2 * PI * U(&d, 13);
  mv->r0 = 2 * PI * U(&d, 14);
  mv->rw = 0.02 * (U(&d, 15) - 0.5);
  mv->z0 = U(&d, 16);
  mv->za = 0.6 * U(&d, 17);
  mv->zw = 0.01 + 0.04 * U(&d, 18);
  mv->zp = 2 * PI * U(&d, 19);
}

typedef struct {
  int k;
  double z;
} depth_key;

static int cmp_depth(const void *a, const void *b) {
  const depth_key *p = a, *q = b;
  if (p->z != q->z) return p->z < q->z ? -1 : 1;
  return p->k - q->k;
}

typedef struct {
  strbuf gt, det;
  uint8_t *jpeg;
  size_t jpeg_n;
  int ok;
} frame_out;

static void video_frame(const synth_video_opts *o, int64_t seq, int t, const background *bg, synth_obj *objs,
                        const motion *mv, int n, frame_out *fo) {
  const int h = o->h, w = o->w;
  depth_key *dk = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *dk);
  int *order = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int));
  synth_obj *placed = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *placed);
  for (int k = 0; k < n; k++) {
    const motion *m = &mv[k];
    placed[k] = objs[k];
    double cx = reflect(m->x0 + m->vx * t + m->ax * sin(m->wx * t + m->px), -0.1 * w, 1.1 * w);
    double cy = reflect(m->y0 + m->vy * t + m->ay * sin(m->wy * t + m->py), -0.1 * h, 1.1 * h);
    obj_place(&placed[k], cx, cy, m->s0 * (1 + m->sa * sin(m->sw * t + m->sp)), m->r0 + m->rw * t);
    dk[k] = (depth_key){k, m->z0 + m->za * sin(m->zw * t + m->zp)};
  }
  qsort(dk, (size_t)n, sizeof *dk, cmp_depth);  // far to near
  for (int i = 0; i < n; i++) order[i] = dk[i].k;
  image_u8 img = image_alloc(h, w);
  int32_t *owner = mallocCheck((size_t)h * w * sizeof(int32_t));
  render(bg, placed, order, n, &img, owner);
  fo->ok = image_encode_jpeg(&img, o->jpeg_quality, &fo->jpeg, &fo->jpeg_n) == MASA_OK;
  const uint64_t s_det = stream_of(NS_VIDEO, seq, P_DET);
  for (int k = 0; k < n; k++) {  // gt and detections in id order
    const synth_obj *ob = &placed[k];
    int64_t x0, y0, x1, y1, bx0 = INT64_MAX, by0 = INT64_MAX, bx1 = -INT64_MAX, by1 = -INT64_MAX;
    int64_t total = 0, visible = 0;
    obj_extent(ob, &x0, &y0, &x1, &y1);
    for (int64_t y = y0; y <= y1; y++)
      for (int64_t x = x0; x <= x1; x++) {
        double u, v, rr;
        if (!obj_inside(ob, x, y, &u, &v, &rr)) continue;
        total++;
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
        if (y < by0) by0 = y;
        if (y > by1) by1 = y;
        if (x >= 0 && x < w && y >= 0 && y < h && owner[y * w + x] == k) visible++;
      }
    if (total == 0 || bx1 < 0 || by1 < 0 || bx0 >= w || by0 >= h) continue;  // out of frame
    double bw = (double)(bx1 - bx0 + 1), bh = (double)(by1 - by0 + 1), vis = (double)visible / total;
    sb_printf(&fo->gt, "%d,%d,%lld,%lld,%.0f,%.0f,1,1,%.5f\n", t + 1, k + 1, (long long)(bx0 + 1),
              (long long)(by0 + 1), bw, bh, vis);
    uint64_t base = ((uint64_t)t << 20) | ((uint64_t)k << 6);
    double miss = 0.08 + 0.5 * (1 - vis);
    if (vis < 0.2 || rng_uniform(o->seed, s_det, base) < miss) continue;
    double jx = 0.05 * bw * rng_normal(o->seed, s_det, base + 1), jy = 0.05 * bh * rng_normal(o->seed, s_det, base + 2);
    double jw = bw * (1 + 0.08 * rng_normal(o->seed, s_det, base + 3));
    double jh = bh * (1 + 0.08 * rng_normal(o->seed, s_det, base + 4));
    double score = 0.45 + 0.5 * vis - 0.1 * fabs(rng_normal(o->seed, s_det, base + 5));
    if (jw < 2) jw = 2;
    if (jh < 2) jh = 2;
    sb_printf(&fo->det, "%d,-1,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n", t + 1, bx0 + 1 + jx + (bw - jw) / 2,
              by0 + 1 + jy + (bh - jh) / 2, jw, jh, fmin(fmax(score, 0.05), 1.0));
  }
  // False positives: 0-2 per frame, low scores.
  uint64_t fb = ((uint64_t)t << 20) | ((uint64_t)1023 << 6);
  int nfp = (int)rng_below(o->seed, s_det, fb, 3);
  for (int i = 0; i < nfp; i++) {
    uint64_t b = fb + 8 + (uint64_t)i * 8;
    double fw = (h < w ? h : w) * (0.05 + 0.2 * rng_uniform(o->seed, s_det, b));
    double fh = fw * (0.5 + 1.5 * rng_uniform(o->seed, s_det, b + 1));
    sb_printf(&fo->det, "%d,-1,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n", t + 1,
              1 + (w - fw) * rng_uniform(o->seed, s_det, b + 2), 1 + (h - fh) * rng_uniform(o->seed, s_det, b + 3),
              fw, fh, 0.05 + 0.45 * rng_uniform(o->seed, s_det, b + 4));
  }
  image_free(&img);
  free(owner);
  free(placed);
  free(order);
  free(dk);
}

int synth_video(const synth_video_opts *o, const char *out_dir) {
  if (check_opts(o->h, o->w, o->objects_min, o->objects_max, o->jpeg_quality) != MASA_OK) return MASA_ERR;
  if (o->n_seqs < 1 || o->n_frames < 1 || o->fps < 1)
    return masa_error("synth --video: sequences, frames and fps must be positive");
  progress pg;
  progress_begin(&pg, "synth video", (int64_t)o->n_seqs * o->n_frames, "frames");
  for (int64_t s = 0; s < o->n_seqs; s++) {
    char seq[4200], path[4300];
    snprintf(seq, sizeof seq, "%s/SYN-%02lld", out_dir, (long long)(s + 1));
    snprintf(path, sizeof path, "%s/img1", seq);
    if (make_dirs(path) != MASA_OK) return MASA_ERR;
    snprintf(path, sizeof path, "%s/gt", seq);
    if (make_dirs(path) != MASA_OK) return MASA_ERR;
    snprintf(path, sizeof path, "%s/det", seq);
    if (make_dirs(path) != MASA_OK) return MASA_ERR;
    const uint64_t s_scene = stream_of(NS_VIDEO, s, P_SCENE);
    background bg;
    bg_init(&bg, o->seed, s_scene, stream_of(NS_VIDEO, s, P_BG_NOISE), o->h, o->w);
    int n = o->objects_min + (int)rng_below(o->seed, s_scene, 100, (uint32_t)(o->objects_max - o->objects_min + 1));
    synth_obj *objs = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *objs);
    motion *mv = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *mv);
    for (int k = 0; k < n; k++) {
      obj_init(&objs[k], o->seed, stream_of(NS_VIDEO, s, P_OBJECT), stream_of(NS_VIDEO, s, P_NOISE), k);
      motion_init(&mv[k], o->seed, stream_of(NS_VIDEO, s, P_MOTION), k, o->h, o->w);
    }
    frame_out *fo = callocCheck((size_t)o->n_frames, sizeof *fo);
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < o->n_frames; t++) {
      video_frame(o, s, t, &bg, objs, mv, n, &fo[t]);
      char img_path[4400];
      snprintf(img_path, sizeof img_path, "%s/img1/%06d.jpg", seq, t + 1);
      if (fo[t].ok) fo[t].ok = write_file(img_path, fo[t].jpeg, fo[t].jpeg_n) == MASA_OK;
      free(fo[t].jpeg);
      fo[t].jpeg = NULL;
    }
    strbuf gt = {0}, det = {0}, ini = {0};
    for (int t = 0; t < o->n_frames; t++) {
      if (!fo[t].ok) bad = 1;
      if (fo[t].gt.n) sb_printf(&gt, "%s", fo[t].gt.s);
      if (fo[t].det.n) sb_printf(&det, "%s", fo[t].det.s);
      free(fo[t].gt.s);
      free(fo[t].det.s);
    }
    free(fo);
    sb_printf(&ini, "[Sequence]\nname=SYN-%02lld\nimDir=img1\nframeRate=%d\nseqLength=%d\nimWidth=%d\n"
              "imHeight=%d\nimExt=.jpg\n", (long long)(s + 1), o->fps, o->n_frames, o->w, o->h);
    int rc = bad ? masa_error("synth --video: writing frames of %s failed", seq) : MASA_OK;
    snprintf(path, sizeof path, "%s/gt/gt.txt", seq);
    if (rc == MASA_OK) rc = write_file(path, gt.s ? gt.s : "", gt.n);
    snprintf(path, sizeof path, "%s/det/det.txt", seq);
    if (rc == MASA_OK) rc = write_file(path, det.s ? det.s : "", det.n);
    snprintf(path, sizeof path, "%s/seqinfo.ini", seq);
    if (rc == MASA_OK) rc = write_file(path, ini.s, ini.n);
    free(gt.s);
    free(det.s);
    free(ini.s);
    free(objs);
    free(mv);
    if (rc != MASA_OK) return MASA_ERR;
    progress_update(&pg, (s + 1) * o->n_frames, NULL);
  }
  progress_end(&pg, (int64_t)o->n_seqs * o->n_frames);
  return MASA_OK;
}
