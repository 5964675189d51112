// The dataset index: where every sample's image and annotations live, built once per source and
// cached in a binary file (host byte order: it is a cache, not an exchange format).
// The cache is keyed by the source files' paths, sizes and modification times (the tar shards,
// the COCO JSON, or the SA-1B folder itself, whose mtime changes when files are added, removed or
// renamed); any difference, a version change or a damaged cache file means a rebuild.
#ifndef MASA_DATASET_INDEX_H
#define MASA_DATASET_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define INDEX_NONE UINT64_MAX

typedef enum { SOURCE_SA1B_FOLDER = 1, SOURCE_SA1B_TAR = 2, SOURCE_COCO = 3 } source_kind;

typedef struct {
  uint64_t path;  // pool offset of the absolute path
  int64_t size, mtime_ns;
} index_file;

typedef struct {
  uint64_t name;                // pool: sample name (member/file stem, or COCO file_name)
  uint64_t img, ann;            // pool: image / annotation file or member (INDEX_NONE: absent)
  int32_t img_file, ann_file;   // tar sources: shard in files[]; otherwise -1
  int64_t img_off, img_size;    // tar sources: member data location
  int64_t ann_off, ann_size;
  int32_t h, w;                 // COCO: from the JSON (SA-1B: read at load)
  int64_t first_ann, n_anns;    // COCO: annotations anns[first_ann .. first_ann + n_anns)
  uint64_t error;               // COCO: pool offset of a problem found while indexing, or INDEX_NONE
} index_entry;

typedef struct {
  int64_t id;
  double bbox[4];
  uint64_t counts;  // pool: compressed RLE string (INDEX_NONE: box only)
} index_ann;

typedef struct {
  uint32_t kind;
  index_file *files;
  index_entry *entries;
  index_ann *anns;
  char *pool;
  int64_t n_files, n_entries, n_anns, pool_size;
  int64_t cap_files, cap_entries, cap_anns, cap_pool;
} dataset_index;

void index_free(dataset_index *x);
uint64_t index_str(dataset_index *x, const char *s);  // appends s to the pool
static inline const char *index_get(const dataset_index *x, uint64_t off) {
  return off == INDEX_NONE ? NULL : x->pool + off;
}
// Appends a source file with its current size and mtime (MASA_ERR if it cannot be stat'ed).
int index_add_file(dataset_index *x, const char *abs_path);
index_entry *index_add_entry(dataset_index *x);  // zeroed, with -1 / INDEX_NONE defaults
index_ann *index_add_ann(dataset_index *x);
// 1 when both describe the same source files (kind, paths, sizes, mtimes).
int index_same_files(const dataset_index *a, const dataset_index *b);
// Atomic write (path.tmp + rename).
int index_save(const dataset_index *x, const char *path);
// MASA_ERR when the file is absent, from another version, or damaged.
int index_load(dataset_index *x, const char *path);

#endif
