// COCO instance JSON ({"images": [...], "annotations": [...], ...}) into a dataset index.
// One entry per image, in the file's order, with its annotations (file order) converted once:
// every segmentation (compressed or uncompressed RLE, polygons) is stored as a compressed RLE
// string; boxes are the file's COCO boxes. Categories are ignored; iscrowd annotations are
// skipped (a crowd region is not one instance). A malformed annotation marks its image bad (the
// message is returned by dataset_load); annotations of unknown images are counted and reported.
#ifndef MASA_COCO_JSON_H
#define MASA_COCO_JSON_H

#include "data/dataset_index.h"

// Appends entries and annotations to x. MASA_ERR when the file cannot be read or is not a COCO
// instance file at all.
int coco_build_index(const char *json_path, dataset_index *x);

#endif
