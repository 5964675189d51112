// One SA-1B per-image annotation file: {"image": {image_id, width, height, file_name},
// "annotations": [{id, segmentation {size, counts}, bbox, area, ...}, ...]}.
#ifndef MASA_SA1B_JSON_H
#define MASA_SA1B_JSON_H

#include <stddef.h>

#include "data/dataset.h"

// Parses text[0..n) into annotations (malloc'd array; each mask owned by it).
// Boxes are pycocotools boxes [x, y, w, h] of the mask whenever there is a mask (so both SA-1B's
// inclusive [x, y, x_max - x_min, y_max - y_min] and COCO's convention are accepted); the file's
// bbox is used only for annotations without segmentation. Masks are kept only if load_masks.
// Policy: a malformed file or annotation (bad JSON, missing fields, bad RLE, wrong mask size,
// duplicate id) fails the whole sample with "WHAT: annotation K (id N): problem"; a well-formed
// but degenerate annotation (empty mask, box narrower or shorter than 1 pixel) is dropped and
// counted in *n_dropped.
int sa1b_parse(const char *text, size_t n, int load_masks, const char *what, int *h, int *w,
               annotation **anns, int *n_anns, int *n_dropped);
void annotations_free(annotation *anns, int n);

#endif
