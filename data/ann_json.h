// Fields of one instance annotation in JSON (SA-1B per-image files and COCO instance files share
// them): id, bbox and segmentation. Every function names `what` (e.g. "sa_1.json: annotation 17
// (id 4521)") in its error message.
#ifndef MASA_ANN_JSON_H
#define MASA_ANN_JSON_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "data/rle.h"

// "id": a positive integer (exactly representable: < 2^53).
int ann_json_id(const cJSON *ann, int64_t *id, const char *what);
// "bbox": [x, y, w, h], four finite numbers. MASA_ERR when absent or malformed.
int ann_json_bbox(const cJSON *ann, double box[4], const char *what);
// A segmentation of an (h, w) image, in any COCO form:
//   {"size": [h, w], "counts": "compressed string"}   (SA-1B, COCO results)
//   {"size": [h, w], "counts": [run, run, ...]}       (COCO iscrowd)
//   [[x0, y0, x1, y1, ...], ...]                       (polygons; several are united)
// The RLE size must equal (h, w).
int ann_json_segmentation(const cJSON *seg, int64_t h, int64_t w, rle *out, const char *what);

#endif
