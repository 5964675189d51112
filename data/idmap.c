// Instance-id maps (see idmap.h).
#include "data/idmap.h"

#include <math.h>
#include <stdlib.h>

#include "core/check.h"

typedef struct {
  int64_t area;
  int idx;
} area_idx;

static int by_area_desc(const void *pa, const void *pb) {
  const area_idx *a = pa, *b = pb;
  if (a->area != b->area) return a->area < b->area ? 1 : -1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

void label_image_build(int h, int w, const mask_rects *masks, const int64_t *areas, int n,
                       label_image *out) {
  out->h = h, out->w = w;
  out->lab = callocCheck((size_t)h * (size_t)w, sizeof(int32_t));
  area_idx *order = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(area_idx));
  for (int i = 0; i < n; i++) order[i] = (area_idx){areas[i], i};
  qsort(order, (size_t)n, sizeof *order, by_area_desc);
  for (int k = 0; k < n; k++) {
    int i = order[k].idx;
    int32_t label = i + 1;
    const mask_rects *m = &masks[i];
    for (int64_t q = 0; q < m->n; q++) {
      const int32_t *r = m->r + 4 * q;
      for (int32_t x = r[0]; x < r[2]; x++) {
        int32_t *col = out->lab + (int64_t)x * h;
        for (int32_t y = r[1]; y < r[3]; y++) col[y] = label;
      }
    }
  }
  free(order);
}

void label_image_free(label_image *l) {
  free(l->lab);
  l->lab = NULL;
}

static int32_t label_at(const label_image *l, const affine2d *view_to_src, double x, double y) {
  double u, v;
  affine_apply(view_to_src, x, y, &u, &v);
  if (!(u >= 0 && v >= 0 && u < l->w && v < l->h)) return 0;
  int64_t xi = (int64_t)u, yi = (int64_t)v;
  return l->lab[xi * l->h + yi];
}

void id_map_render(int64_t *id_map, int map_h, int map_w, int stride, int cw, int ch,
                   const label_image *main, const affine2d *main_to_view, const int64_t *main_ids,
                   const label_image *mix, const affine2d *mix_to_view, const int64_t *mix_ids) {
  affine2d inv_main = affine_inverse(*main_to_view), inv_mix = affine_identity();
  if (mix) inv_mix = affine_inverse(*mix_to_view);
  for (int i = 0; i < map_h; i++)
    for (int j = 0; j < map_w; j++) {
      double x = (j + 0.5) * stride, y = (i + 0.5) * stride;
      int64_t id = 0;
      if (x < cw && y < ch) {
        int32_t l = label_at(main, &inv_main, x, y);
        if (l > 0) {
          id = main_ids[l - 1];
        } else if (mix) {
          l = label_at(mix, &inv_mix, x, y);
          if (l > 0) id = mix_ids[l - 1];
        }
      }
      id_map[(int64_t)i * map_w + j] = id;
    }
}
