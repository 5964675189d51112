// Tracking results of one sequence and their file formats:
// - MOTChallenge: frame (1-based), id (1-based), left, top, width, height, score, -1, -1, -1
//   (what `masa eval --benchmark mot` and TrackEval read as RES/SEQ.txt);
// - TAO: a JSON list of {image_id, video_id, category_id, track_id, bbox [x, y, w, h], score};
//   image_id / category_id from COCO-results detections, else the frame number / 1;
// - BDD100K: a JSON list of frames {name, videoName, frameIndex, labels [{id, category,
//   box2d, score}]} (names, indices and categories from BDD detections when given).
// Tracker ids (0-based) are written + 1 in every format.
#ifndef MASA_EVAL_TRACKER_OUTPUT_H
#define MASA_EVAL_TRACKER_OUTPUT_H

#include <stdint.h>

#include "eval/det_reader.h"

typedef enum { RESULTS_MOT = 0, RESULTS_TAO = 1, RESULTS_BDD = 2 } results_format;

typedef struct {
  int frame;  // 0-based
  int64_t id;
  float box[4];  // x1, y1, x2, y2
  float score;
  int label;
} track_row;

typedef struct {
  track_row *rows;
  int64_t n, cap;
} track_results;

void track_results_push(track_results *r, int frame, int64_t id, const float *box, float score, int label);
void track_results_free(track_results *r);
// "mot" | "tao" | "bdd"; -1 otherwise.
int results_format_parse(const char *name);
// dets / frames give the names and ids of the TAO and BDD formats (dets may be NULL).
int track_results_write(const char *path, results_format fmt, const track_results *r, const frame_seq *frames,
                        const det_set *dets);

#endif
