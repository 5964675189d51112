// BDD100K box tracking (bdd100k/bdd100k, scalabel format): one JSON per video, a list of frames
//   {name, videoName, frameIndex, labels: [{id, category, box2d {x1, y1, x2, y2},
//    attributes {occluded, truncated, crowd}, score?}]}
// Older files use "index" for frameIndex and "Crowd" for crowd; both are accepted. Ids may be
// strings or numbers; each distinct id gets an integer in order of first appearance.
// Evaluated classes: pedestrian, rider, car, truck, bus, train, motorcycle, bicycle. In ground
// truth, 'other person', 'other vehicle', 'trailer' and crowd boxes are ignore regions; labels of
// any other category (or without box2d) are skipped.
#ifndef MASA_EVAL_BDD_FORMAT_H
#define MASA_EVAL_BDD_FORMAT_H

#include <stdint.h>

#define BDD_NUM_CLASSES 8

typedef struct {
  int64_t id;
  int cls;     // 0..7 (bdd_class_name order), -1 for others
  int ignore;  // ground truth ignore region
  double box[4];  // x1, y1, x2, y2
  double score;   // results only (1 when absent)
} bdd_label;

typedef struct {
  int index;  // frameIndex
  char name[256];
  int n;
  bdd_label *labels;
} bdd_frame;

typedef struct {
  char name[256];  // videoName (or the file stem when absent)
  int num_frames;
  bdd_frame *frames;  // sorted by index
  int64_t skipped;    // labels skipped (unknown category, no box2d)
} bdd_video;

const char *bdd_class_name(int cls);
int bdd_class_of(const char *category);  // -1 if not an evaluated class

int bdd_read_video(const char *path, int is_gt, bdd_video *out);
// Reorders the result frames to the ground truth's frames by frameIndex; result frames missing
// from the file become empty, extra frames are an error naming the file.
int bdd_align_frames(const bdd_video *gt, bdd_video *res, const char *res_path);
void bdd_video_free(bdd_video *v);
// Writes a results video; ids are written as strings, as BDD100K files carry them.
int bdd_write_video(const char *path, const bdd_video *v);

#endif
