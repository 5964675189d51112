// TAO (TAO-Dataset/tao): COCO-video JSON ground truth
//   videos {id, name, width, height}, images {id, video_id, frame_index, file_name, width,
//   height}, tracks {id, category_id, video_id}, annotations {id, image_id, video_id, track_id,
//   category_id, bbox [x, y, w, h], area, iscrowd}, categories {id, name, ...}
// and results: a JSON list of {image_id, video_id?, category_id, track_id, bbox, score}.
// A video's timesteps are its annotated images ordered by frame_index. The evaluated classes are
// the categories with at least one ground-truth annotation, in category-id order.
#ifndef MASA_EVAL_TAO_FORMAT_H
#define MASA_EVAL_TAO_FORMAT_H

#include <stdint.h>

#include "eval/teta.h"

typedef struct {
  int64_t id;
  char name[256];
  int num_frames;
  int64_t *image_ids;  // (num_frames) by frame_index
} tao_video;

typedef struct {
  int video;   // index into videos
  int frame;   // timestep within the video
  int64_t track_id;
  int64_t category_id;
  int cls;     // evaluated class index or -1
  double box[4];  // x0, y0, x1, y1 (x1 = x + w as TrackEval converts)
  double score;
} tao_det;

typedef struct {
  tao_video *videos;
  int num_videos;
  int64_t *img_sorted;  // image ids sorted, with their (video, frame)
  int *img_video, *img_frame;
  int64_t num_images;
  int num_eval_classes;
  int64_t *eval_class_cat;  // category id of each evaluated class
  char **eval_class_names;
  tao_det *anns;
  int64_t num_anns;
} tao_dataset;

typedef struct {
  tao_det *dets;
  int64_t n;
  int64_t dropped;  // results on images that are not in the ground truth
} tao_results;

int tao_read_gt(const char *path, tao_dataset *out);
void tao_dataset_free(tao_dataset *d);
int tao_read_results(const char *path, const tao_dataset *gt, tao_results *out);
void tao_results_free(tao_results *r);
// MASA's TETA post-processing (tcc): each (video, track) takes the category that occurs most
// often among its boxes (ties: the smallest category id, as scipy.stats.mode).
void tao_results_vote_track_class(tao_results *r, const tao_dataset *gt);
// One video as TETA input (frames in timestep order, boxes in file order).
void tao_build_teta_seq(const tao_dataset *gt, const tao_results *res, int video, teta_seq *s);
// Writes results as a TAO results list.
int tao_write_results(const char *path, const tao_dataset *gt, const tao_results *r);

#endif
