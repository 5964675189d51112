// Per-pixel instance-id maps of a view. A source's masks are first painted into a label image
// (largest area first, so where SA-1B masks nest the smallest, most specific one is on top);
// a view cell then takes the label found at the source pixel under its centre. The main image
// is on top of the mixup image (both are blended 0.5/0.5; the main image comes first).
#ifndef MASA_IDMAP_H
#define MASA_IDMAP_H

#include <stdint.h>

#include "data/boxes.h"
#include "data/transform.h"

typedef struct {
  int h, w;
  int32_t *lab;  // (w, h) column-major: lab[x * h + y] = 1-based instance index, 0 = none
} label_image;

// masks[i] / areas[i] for n instances; instances without a mask have masks[i].n == 0.
void label_image_build(int h, int w, const mask_rects *masks, const int64_t *areas, int n,
                       label_image *out);
void label_image_free(label_image *l);

// id_map (map_h, map_w): cell (i, j) looks at the view point ((j + .5) s, (i + .5) s); points
// outside [0, cw) x [0, ch) are 0. main_ids / mix_ids are indexed by label - 1; mix may be NULL.
void id_map_render(int64_t *id_map, int map_h, int map_w, int stride, int cw, int ch,
                   const label_image *main, const affine2d *main_to_view, const int64_t *main_ids,
                   const label_image *mix, const affine2d *mix_to_view, const int64_t *mix_ids);

#endif
