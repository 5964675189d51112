// COCO run-length encoding (conventions in rle.h and reference/formats-metrics.md).
// Runs are uint32 like pycocotools, so h*w must fit in 32 bits; every parser checks it.
// Parsers validate everything a malformed file can get wrong (characters, truncated counts,
// negative or overflowing runs, counts not summing to h*w) and name `what` in the message.
#include "data/rle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"

#define RLE_MAX_PIXELS 0xffffffffLL

void rle_free(rle *r) {
  free(r->cnts);
  r->cnts = NULL;
  r->m = 0;
}

static void rle_init(rle *r, int64_t h, int64_t w, int64_t m) {
  r->h = h;
  r->w = w;
  r->m = m;
  r->cnts = mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(uint32_t));
}

static int check_size(int64_t h, int64_t w, const char *what) {
  if (h < 0 || w < 0 || (w > 0 && h > RLE_MAX_PIXELS / w))
    return masa_error("%s: mask size %lld x %lld is out of range (h*w must fit in 32 bits)", what,
                      (long long)h, (long long)w);
  return MASA_OK;
}

// Column-major order over a row-major buffer: transpose in cache-sized tiles into a scratch
// buffer first, then find runs with 8-byte steps (masks are mostly long runs).
static uint8_t *transpose_01(const uint8_t *mask, int64_t h, int64_t w) {
  uint8_t *t = mallocCheck((size_t)(h * w > 0 ? h * w : 1));
  enum { TILE = 64 };
  for (int64_t y0 = 0; y0 < h; y0 += TILE)
    for (int64_t x0 = 0; x0 < w; x0 += TILE) {
      int64_t y1 = y0 + TILE < h ? y0 + TILE : h, x1 = x0 + TILE < w ? x0 + TILE : w;
      for (int64_t y = y0; y < y1; y++)
        for (int64_t x = x0; x < x1; x++) t[x * h + y] = mask[y * w + x] != 0;
    }
  return t;
}

// Index of the first byte != v in t[p..n), or n.
static int64_t run_end(const uint8_t *t, int64_t p, int64_t n, uint8_t v) {
  const uint64_t pat = v ? 0x0101010101010101ULL : 0;
  while (p + 8 <= n) {
    uint64_t word;
    memcpy(&word, t + p, 8);
    if (word != pat) break;
    p += 8;
  }
  while (p < n && t[p] == v) p++;
  return p;
}

void rle_encode(const uint8_t *mask, int64_t h, int64_t w, rle *out) {
  const int64_t n = h * w;
  uint8_t *t = transpose_01(mask, h, w);
  int64_t m = 1;
  for (int64_t p = 0, v = 0; p < n; v ^= 1) {  // count runs, then fill
    int64_t e = run_end(t, p, n, (uint8_t)v);
    if (e < n) m++;
    p = e;
  }
  rle_init(out, h, w, m);
  int64_t k = 0, p = 0;
  for (uint8_t v = 0; k < m; v ^= 1) {
    int64_t e = run_end(t, p, n, v);
    out->cnts[k++] = (uint32_t)(e - p);
    p = e;
  }
  masa_assert(p == n);
  free(t);
}

void rle_decode(const rle *r, uint8_t *mask) {
  const int64_t h = r->h, w = r->w;
  memset(mask, 0, (size_t)(h * w));
  int64_t p = 0;  // column-major position of the run start
  for (int64_t i = 0; i < r->m; i++) {
    int64_t len = r->cnts[i];
    masa_assert(p + len <= h * w);  // parsers validate; a hand-made rle must too
    if ((i & 1) && len > 0) {
      int64_t x = p / h, y = p % h, left = len;
      while (left > 0) {
        int64_t n = h - y < left ? h - y : left;
        uint8_t *col = mask + y * w + x;
        for (int64_t k = 0; k < n; k++) col[k * w] = 1;
        left -= n;
        x++;
        y = 0;
      }
    }
    p += len;
  }
}

// Appends run `i` of the delta-coded string: 5 bits per character, least significant group
// first, 0x20 = more groups follow, sign taken from bit 0x10 of the last group.
static size_t put_count(char *s, int64_t x) {
  size_t n = 0;
  for (;;) {
    int c = (int)(x & 0x1f);
    x >>= 5;  // arithmetic on int64_t with gcc/clang (implementation-defined, relied upon)
    int more = (c & 0x10) ? x != -1 : x != 0;
    if (more) c |= 0x20;
    s[n++] = (char)(c + 48);
    if (!more) return n;
  }
}

char *rle_to_string(const rle *r) {
  // A delta of two uint32 runs needs at most 33 signed bits: 7 characters.
  char *s = mallocCheck((size_t)r->m * 7 + 1);
  size_t n = 0;
  for (int64_t i = 0; i < r->m; i++) {
    int64_t x = r->cnts[i];
    if (i > 2) x -= r->cnts[i - 2];
    n += put_count(s + n, x);
  }
  s[n] = 0;
  return s;
}

int rle_from_string(const char *s, int64_t h, int64_t w, rle *out, const char *what) {
  memset(out, 0, sizeof *out);
  if (check_size(h, w, what) != MASA_OK) return MASA_ERR;
  const int64_t hw = h * w;
  size_t n = strlen(s);
  rle r;
  rle_init(&r, h, w, (int64_t)n);  // every run takes at least one character
  int64_t m = 0, total = 0;
  size_t p = 0;
  while (p < n) {
    uint64_t x = 0;
    int k = 0, more;
    do {
      if (p >= n) {
        rle_free(&r);
        return masa_error("%s: segmentation.counts is not a valid RLE string: it ends inside run %lld",
                          what, (long long)m);
      }
      int c = (unsigned char)s[p] - 48;
      if (c < 0 || c > 63) {
        rle_free(&r);
        return masa_error("%s: segmentation.counts is not a valid RLE string: invalid character '%c' "
                          "(code %d) at offset %zu", what, s[p] >= 32 && s[p] < 127 ? s[p] : '?',
                          (unsigned char)s[p], p);
      }
      if (k == 7) {
        rle_free(&r);
        return masa_error("%s: segmentation.counts is not a valid RLE string: run %lld is longer "
                          "than 7 characters (overflow)", what, (long long)m);
      }
      x |= (uint64_t)(c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++;
      k++;
      if (!more && (c & 0x10)) x |= ~0ULL << (5 * k);  // sign extension
    } while (more);
    int64_t v = (int64_t)x;
    if (m > 2) v += r.cnts[m - 2];
    if (v < 0 || v > hw - total) {
      rle_free(&r);
      return masa_error("%s: segmentation.counts is not a valid RLE string: run %lld has length "
                        "%lld, %s", what, (long long)m, (long long)v,
                        v < 0 ? "negative" : "past the end of the mask (counts sum beyond h*w)");
    }
    r.cnts[m++] = (uint32_t)v;
    total += v;
  }
  if (total != hw) {
    rle_free(&r);
    return masa_error("%s: segmentation.counts is not a valid RLE string: runs sum to %lld, "
                      "expected h*w = %lld*%lld = %lld", what, (long long)total, (long long)h,
                      (long long)w, (long long)hw);
  }
  r.m = m;
  *out = r;
  return MASA_OK;
}

int rle_from_counts(const int64_t *counts, int64_t m, int64_t h, int64_t w, rle *out,
                    const char *what) {
  memset(out, 0, sizeof *out);
  if (check_size(h, w, what) != MASA_OK) return MASA_ERR;
  int64_t total = 0;
  for (int64_t i = 0; i < m; i++) {
    if (counts[i] < 0 || counts[i] > h * w - total)
      return masa_error("%s: segmentation.counts[%lld] = %lld is %s", what, (long long)i,
                        (long long)counts[i],
                        counts[i] < 0 ? "negative" : "past the end of the mask (sum beyond h*w)");
    total += counts[i];
  }
  if (total != h * w)
    return masa_error("%s: segmentation.counts sum to %lld, expected h*w = %lld", what,
                      (long long)total, (long long)(h * w));
  rle_init(out, h, w, m);
  for (int64_t i = 0; i < m; i++) out->cnts[i] = (uint32_t)counts[i];
  return MASA_OK;
}

// ---- polygons -------------------------------------------------------------------------------
// Same rasterisation as pycocotools' frPoly, which defines COCO's polygon masks:
// 1. vertices are scaled by 5 and rounded with (int)(5v + 0.5) (truncation toward zero);
// 2. each edge is walked one step along its major axis from its lower endpoint (in the major
//    axis), the minor coordinate rounded the same way, so an edge rasterises identically in both
//    directions; the points are visited in polygon order;
// 3. wherever two consecutive points differ in x, the crossing between columns min(u) and
//    min(u)+1 of the 5x grid lies on a pixel centre only when min(u) = 5*col + 2; there the
//    column's parity toggles at row ceil(clamp((min(v) + 0.5)/5 - 0.5, 0, h));
// 4. toggle positions (column-major) are sorted; coincident toggles cancel in pairs.

typedef struct {
  uint32_t *pos;
  int64_t n, cap;
} toggles;

static void toggle_push(toggles *t, uint32_t p) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 256;
    uint32_t *np = mallocCheck((size_t)t->cap * sizeof(uint32_t));
    if (t->n) memcpy(np, t->pos, (size_t)t->n * sizeof(uint32_t));
    free(t->pos);
    t->pos = np;
  }
  t->pos[t->n++] = p;
}

typedef struct {
  int have_prev;
  int pu, pv;
  int64_t h, w;
  toggles *t;
} edge_walk;

static void visit(edge_walk *e, int u, int v) {
  if (e->have_prev && u != e->pu) {
    int u0 = u < e->pu ? u : e->pu;
    int v0 = v < e->pv ? v : e->pv;
    double xd = ((double)u0 + 0.5) / 5.0 - 0.5;
    if (floor(xd) == xd && xd >= 0 && xd <= (double)(e->w - 1)) {
      double yd = ((double)v0 + 0.5) / 5.0 - 0.5;
      if (yd < 0) yd = 0;
      else if (yd > (double)e->h) yd = (double)e->h;
      yd = ceil(yd);
      toggle_push(e->t, (uint32_t)((int64_t)xd * e->h + (int64_t)yd));
    }
  }
  e->have_prev = 1;
  e->pu = u;
  e->pv = v;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int rle_from_polygon(const double *xy, int64_t npts, int64_t h, int64_t w, rle *out,
                     const char *what) {
  memset(out, 0, sizeof *out);
  if (check_size(h, w, what) != MASA_OK) return MASA_ERR;
  if (npts < 3) return masa_error("%s: polygon has %lld points, needs at least 3", what, (long long)npts);
  int *gx = mallocCheck((size_t)(npts + 1) * sizeof(int));
  int *gy = mallocCheck((size_t)(npts + 1) * sizeof(int));
  double walk = 0;
  for (int64_t j = 0; j < npts; j++) {
    double x = xy[2 * j], y = xy[2 * j + 1];
    if (!isfinite(x) || !isfinite(y) || fabs(x) > 1e8 || fabs(y) > 1e8) {
      free(gx);
      free(gy);
      return masa_error("%s: polygon point %lld (%g, %g) is not a finite coordinate within 1e8",
                        what, (long long)j, x, y);
    }
    gx[j] = (int)(5.0 * x + 0.5);
    gy[j] = (int)(5.0 * y + 0.5);
  }
  gx[npts] = gx[0];
  gy[npts] = gy[0];
  for (int64_t j = 0; j < npts; j++) {
    double dx = fabs((double)gx[j + 1] - gx[j]), dy = fabs((double)gy[j + 1] - gy[j]);
    walk += (dx > dy ? dx : dy) + 1;
  }
  if (walk > 1e9) {
    free(gx);
    free(gy);
    return masa_error("%s: polygon perimeter is too long to rasterise (%.3g steps)", what, walk);
  }
  toggles t = {0};
  edge_walk e = {.h = h, .w = w, .t = &t};
  for (int64_t j = 0; j < npts; j++) {
    int xs = gx[j], ys = gy[j], xe = gx[j + 1], ye = gy[j + 1];
    int dx = abs(xe - xs), dy = abs(ye - ys);
    if (dx == 0 && dy == 0) {  // repeated vertex: one point (its x matches both neighbours)
      visit(&e, xs, ys);
      continue;
    }
    int xmajor = dx >= dy;
    int reversed = xmajor ? xs > xe : ys > ye;
    if (reversed) {  // walk from the lower endpoint, emit in polygon order
      int tmp = xs;
      xs = xe;
      xe = tmp;
      tmp = ys;
      ys = ye;
      ye = tmp;
    }
    if (xmajor) {
      double slope = (double)(ye - ys) / dx;
      for (int d = 0; d <= dx; d++) {
        int s = reversed ? dx - d : d;
        visit(&e, xs + s, (int)(ys + slope * s + 0.5));
      }
    } else {
      double slope = (double)(xe - xs) / dy;
      for (int d = 0; d <= dy; d++) {
        int s = reversed ? dy - d : d;
        visit(&e, (int)(xs + slope * s + 0.5), ys + s);
      }
    }
  }
  free(gx);
  free(gy);
  if (t.n) qsort(t.pos, (size_t)t.n, sizeof(uint32_t), cmp_u32);
  // Runs between toggles of odd multiplicity; toggles at h*w (the end) change nothing.
  rle_init(out, h, w, t.n + 1);
  int64_t m = 0;
  uint32_t last = 0;
  const uint32_t hw = (uint32_t)(h * w);
  for (int64_t i = 0; i < t.n;) {
    int64_t j = i;
    while (j < t.n && t.pos[j] == t.pos[i]) j++;
    if (((j - i) & 1) && t.pos[i] < hw) {
      out->cnts[m++] = t.pos[i] - last;
      last = t.pos[i];
    }
    i = j;
  }
  out->cnts[m++] = hw - last;
  out->m = m;
  free(t.pos);
  return MASA_OK;
}

int rle_union(const rle *rs, int n, int64_t h, int64_t w, rle *out) {
  memset(out, 0, sizeof *out);
  if (check_size(h, w, "rle_union") != MASA_OK) return MASA_ERR;
  for (int i = 0; i < n; i++)
    if (rs[i].h != h || rs[i].w != w)
      return masa_error("rle_union: mask %d is %lld x %lld, expected %lld x %lld", i,
                        (long long)rs[i].h, (long long)rs[i].w, (long long)h, (long long)w);
  size_t hw = (size_t)(h * w);
  uint8_t *acc = callocCheck(hw > 0 ? hw : 1, 1), *one = mallocCheck(hw > 0 ? hw : 1);
  for (int i = 0; i < n; i++) {
    rle_decode(&rs[i], one);
    for (size_t k = 0; k < hw; k++) acc[k] |= one[k];
  }
  rle_encode(acc, h, w, out);
  free(acc);
  free(one);
  return MASA_OK;
}

int64_t rle_area(const rle *r) {
  int64_t a = 0;
  for (int64_t i = 1; i < r->m; i += 2) a += r->cnts[i];
  return a;
}

// Tight box of the foreground runs. A run crossing a column boundary covers the last row of one
// column and the first row of the next, so the box spans the full height.
void rle_bbox(const rle *r, double box[4]) {
  const int64_t h = r->h;
  int64_t x0 = INT64_MAX, x1 = -1, y0 = INT64_MAX, y1 = -1, p = 0;
  for (int64_t i = 0; i < r->m; i++) {
    int64_t len = r->cnts[i];
    if ((i & 1) && len > 0) {
      int64_t xa = p / h, ya = p % h, q = p + len - 1, xb = q / h, yb = q % h;
      if (xa < x0) x0 = xa;
      if (xb > x1) x1 = xb;
      if (xa != xb) {
        ya = 0;
        yb = h - 1;
      }
      if (ya < y0) y0 = ya;
      if (yb > y1) y1 = yb;
    }
    p += len;
  }
  if (x1 < 0) {
    box[0] = box[1] = box[2] = box[3] = 0;
    return;
  }
  box[0] = (double)x0;
  box[1] = (double)y0;
  box[2] = (double)(x1 - x0 + 1);
  box[3] = (double)(y1 - y0 + 1);
}

void rle_copy(const rle *src, rle *dst) {
  rle_init(dst, src->h, src->w, src->m);
  if (src->m) memcpy(dst->cnts, src->cnts, (size_t)src->m * sizeof(uint32_t));
}
