// COCO run-length encoded masks, bit-compatible with pycocotools (formats-metrics.md):
// - a mask of h rows and w columns is flattened COLUMN-major (Fortran order, x outer, y inner);
// - counts alternate runs of 0s and 1s, starting with 0s (a leading 0 count when the first pixel
//   is set); the counts sum to h*w;
// - the compressed string form is pycocotools' LEB128-like text (5 bits per char + 48, with the
//   delta coding of counts[i] against counts[i-2] for i > 2).
#ifndef MASA_RLE_H
#define MASA_RLE_H

#include <stdint.h>

typedef struct {
  int64_t h, w;
  int64_t m;        // number of runs
  uint32_t *cnts;   // (m) run lengths
} rle;

void rle_free(rle *r);
// Row-major (h, w) mask of 0/1 bytes -> RLE.
void rle_encode(const uint8_t *mask, int64_t h, int64_t w, rle *out);
// RLE -> row-major (h, w) 0/1 bytes.
void rle_decode(const rle *r, uint8_t *mask);
// Parses the compressed string; MASA_ERR (message names `what`, e.g. "sa_1.json: annotation 17")
// when it is malformed or its counts do not sum to h*w.
int rle_from_string(const char *s, int64_t h, int64_t w, rle *out, const char *what);
// Compressed string, malloc'd.
char *rle_to_string(const rle *r);
// Uncompressed counts (COCO "iscrowd" style list); validated like rle_from_string.
int rle_from_counts(const int64_t *counts, int64_t m, int64_t h, int64_t w, rle *out,
                    const char *what);
// Polygon (x0, y0, x1, y1, ...) rasterised exactly as pycocotools frPoly (upsampled edge walk).
int rle_from_polygon(const double *xy, int64_t npts, int64_t h, int64_t w, rle *out,
                     const char *what);
int64_t rle_area(const rle *r);
// Tight box [x, y, w, h] as pycocotools toBbox (zeros for an empty mask).
void rle_bbox(const rle *r, double box[4]);
// Union of n masks of size (h, w) (pycocotools merge with intersect=0, as used for COCO
// annotations made of several polygons). MASA_ERR when a mask has another size.
int rle_union(const rle *rs, int n, int64_t h, int64_t w, rle *out);
void rle_copy(const rle *src, rle *dst);

#endif
