// Image collections with instance annotations, opened from:
//   - an SA-1B folder of sa_*.jpg + sa_*.json (any folder of NAME.jpg + NAME.json in SA-1B format),
//   - SA-1B .tar shards (a file, a folder or glob of them, or a comma-separated list of those),
//     read in place, never extracted,
//   - a COCO-format instance JSON (RLE, polygons or boxes only) plus its image folder.
// An index (member offsets, image sizes, annotation counts) is built once per source and cached
// next to it (or in index_dir), so a restart does not rescan millions of files; a stale cache
// (source size/mtime changed) is rebuilt.
// Labels are ignored: every annotation is an instance, identified by its annotation id.
#ifndef MASA_DATASET_H
#define MASA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/rle.h"

typedef struct {
  int64_t id;        // annotation id (SA-1B: unique per mask); > 0
  double bbox[4];    // x, y, w, h in source pixels (from the file; from the mask when absent)
  int has_mask;
  rle mask;          // (h, w) of the image when has_mask
} annotation;

typedef struct {
  int64_t index;       // position in the dataset
  char name[256];      // file or member name, for messages
  int h, w;            // source image size (from annotations/index; verified at decode)
  uint8_t *jpeg;       // encoded image bytes (JPEG or PNG), malloc'd
  size_t jpeg_size;
  annotation *anns;
  int n_anns;
  int n_dropped;       // degenerate annotations left out (empty mask, box under 1 pixel)
} raw_sample;

typedef struct {
  const char *index_dir;   // where to cache the index (NULL: next to the source)
  int load_masks;          // 0: boxes only (masks skipped while parsing: faster)
  const char *image_root;  // COCO JSON: folder holding file_name paths (NULL: next to the JSON)
} dataset_opts;

typedef struct dataset dataset;

// NULL with masa_errmsg() when the source cannot be opened or indexed at all.
dataset *dataset_open(const char *path, const dataset_opts *opts);
void dataset_close(dataset *d);
int64_t dataset_size(const dataset *d);
const char *dataset_describe(const dataset *d);  // "SA-1B tar shards: 3 files, 33,112 images"
// 1 when dataset_open reused a cached index, 0 when it (re)built it.
int dataset_index_reused(const dataset *d);
// Where the index cache lives ("" when it could not be written).
const char *dataset_index_path(const dataset *d);
// Loads sample idx. Thread-safe (each call uses its own file handles or pread). MASA_ERR with a
// message naming the file/member and the problem (missing image, malformed JSON, bad RLE, ...):
// callers skip and count such samples. Policy: a malformed annotation fails its whole sample
// (partial ground truth would teach "this object is background"); a well-formed but degenerate
// one (empty mask, box under 1 pixel wide or high) is dropped and counted in out->n_dropped.
// Boxes are pycocotools [x, y, w, h] boxes: from the mask for SA-1B-format files (so SA-1B's
// one-pixel-smaller bbox convention and COCO's are both accepted), from the file for COCO.
int dataset_load(dataset *d, int64_t idx, raw_sample *out);
void raw_sample_free(raw_sample *s);

#endif
