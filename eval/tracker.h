// Multi-object trackers fed with detections + appearance embeddings, one frame at a time.
// - TRACKER_TAO: MASA's MasaTaoTracker (masa-spec §7.2; TAO, open-vocabulary MOT, demos).
//   score = (bi-softmax of raw dot products + cosine similarity) / 2, distractor suppression,
//   optional motion gating (max_distance, fps), momentum update of the track embedding.
// - TRACKER_BDD: MASA's MasaBDDTracker (§7.3; BDD100K): bi-softmax only, duplicate removal,
//   "backdrops" (last frames' unmatched detections as negative memory), suppressed ids (-2).
// - TRACKER_IOU: a baseline without appearance: IoU between a detection and a track's last box,
//   Hungarian (or greedy) matching, with the detection handling and score thresholds of the TAO or
//   BDD tracker (iou_base) so that a comparison isolates the appearance cue.
// Step-for-step rules shared with the official code (and tests/oracle_tracker.py):
// - detections are visited in descending score order, exact score ties by ascending input index
//   (a stable sort; the official torch sort is unstable there);
// - IoU is mmdet's bbox_overlaps (area = (x2 - x1) * (y2 - y1), union clamped at 1e-6), float32;
// - a row's best memory entry is the FIRST maximum (torch.max), NaN counting as the maximum;
// - memory order = tracks by creation (a Python dict), then backdrops, newest frame first;
// - a frame without detections changes nothing (no ageing); frame_id 0 resets the tracker (as
//   MASA's predict does at the start of every video). Ids count from 0 per video.
// Embeddings are used raw (NOT normalised) inside the softmaxes, as MASA does: scale matters.
#ifndef MASA_EVAL_TRACKER_H
#define MASA_EVAL_TRACKER_H

#include <stdint.h>

#include "core/config.h"

typedef enum { TRACKER_TAO = 0, TRACKER_BDD = 1, TRACKER_IOU = 2 } tracker_kind;

// Values are the Python-side numbers (doubles); the tracker rounds them to float32 where torch
// does (a Python scalar meeting a float32 tensor), so thresholds compare exactly as in PyTorch.
typedef struct {
  tracker_kind kind;
  int dim;  // embedding length (unused by TRACKER_IOU)
  double init_score_thr;   // a detection starts a track when score > this
  double obj_score_thr;    // ... may continue one when score > this
  double match_score_thr;  // ... and its similarity > this
  int memo_tracklet_frames;  // a track is dropped once frame - last_frame >= this
  double memo_momentum;      // embed = (1 - m) * old + m * new
  // TAO
  double distractor_score_thr, distractor_nms_thr;
  double max_distance;  // motion gating in original pixels; -1 (official): off
  double fps;           // gating: growth = fps / 6, smoothing = 100 / fps
  // BDD
  int memo_backdrop_frames;
  double nms_conf_thr, nms_backdrop_iou_thr, nms_class_iou_thr;
  int with_cats;  // BDD: similarity zeroed across labels
  // IOU
  tracker_kind iou_base;  // TRACKER_TAO or TRACKER_BDD: detection handling and thresholds
  double iou_match_thr;   // a pair matches when IoU > this
  int iou_hungarian;      // 1: optimal assignment (scipy rules); 0: greedy in score order
} tracker_opts;

// Official values: TAO = the demo / plug-and-play configs (init 0.1, obj 0.01, gating 100 px at
// 30 fps); BDD = configs/*/bdd_test; IOU = the TAO detection handling, IoU > 0.3, Hungarian.
void tracker_default_opts(tracker_kind kind, tracker_opts *o);

// `track.*` keys (eval/tracker_config.c, registered in csrc/cli/cmd_schemas.c) and the options
// they describe for the tracker named by track.tracker (tao | bdd | iou); dim is left to the
// caller (the embedder's).
extern const cfg_key track_schema[];
int tracker_opts_from_config(const config *cfg, tracker_opts *o);
// "tao" | "bdd" | "iou"; -1 otherwise.
int tracker_kind_parse(const char *name);

typedef struct tracker tracker;

tracker *tracker_create(const tracker_opts *o);
void tracker_free(tracker *t);
void tracker_reset(tracker *t);
// One frame. boxes (n, 4) x1, y1, x2, y2 in original-image pixels; scores (n); labels (n) (may be
// NULL: all 0); embeds (n, dim) (NULL allowed for TRACKER_IOU). out_ids (n) receives each input
// detection's track id (>= 0) or -1 when it is not output (below thresholds, suppressed).
// Returns MASA_ERR on bad arguments (negative n, missing embeddings).
int tracker_step(tracker *t, int64_t frame_id, int n, const float *boxes, const float *scores,
                 const int *labels, const float *embeds, int64_t *out_ids);
// Live tracks (ids >= 0) in memory order after the last step, for inspection and tests.
int tracker_num_tracks(const tracker *t);

#endif
