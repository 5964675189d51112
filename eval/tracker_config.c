// The `track.*` config keys: tracker choice and thresholds (per tracker, with the official
// values as defaults), the input-detection NMS of the demos, and the histogram embedder.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "eval/tracker.h"

const cfg_key track_schema[] = {
    {"track.tracker", CFG_STRING, "tao", "tao (MasaTaoTracker, §7.2) | bdd (MasaBDDTracker, §7.3) | iou (baseline)"},
    {"track.det_nms", CFG_BOOL, "true", "class-agnostic NMS on the input detections first (MASA's demos)"},
    {"track.det_nms_thr", CFG_FLOAT, "0.5", "IoU threshold of that NMS"},
    {"track.tao.init_score_thr", CFG_FLOAT, "0.1", "new track when score > this (TAO benchmark: 0.0001)"},
    {"track.tao.obj_score_thr", CFG_FLOAT, "0.01", "a detection may join a track when score > this (benchmark: 0.0001)"},
    {"track.tao.match_score_thr", CFG_FLOAT, "0.5", "(bi-softmax + cosine) / 2 must exceed this"},
    {"track.tao.memo_tracklet_frames", CFG_INT, "10", "frames a lost track is remembered (raise for long occlusions)"},
    {"track.tao.memo_momentum", CFG_FLOAT, "0.8", "track embedding = (1 - m) * old + m * new"},
    {"track.tao.distractor_score_thr", CFG_FLOAT, "0.5", "detections below this score may be distractors"},
    {"track.tao.distractor_nms_thr", CFG_FLOAT, "0.3", "... and are dropped when IoU > this with a higher-scored one"},
    {"track.tao.max_distance", CFG_FLOAT, "100", "motion gating radius in original pixels; -1: off (TAO benchmark)"},
    {"track.tao.fps", CFG_FLOAT, "30", "gating: growth fps/6, smoothing 100/fps; 0: the sequence's frame rate"},
    {"track.bdd.init_score_thr", CFG_FLOAT, "0.5", "new track when score > this"},
    {"track.bdd.obj_score_thr", CFG_FLOAT, "0.3", "a detection may join a track when score > this"},
    {"track.bdd.match_score_thr", CFG_FLOAT, "0.6", "bi-softmax must exceed this"},
    {"track.bdd.memo_tracklet_frames", CFG_INT, "10", "frames a lost track is remembered"},
    {"track.bdd.memo_backdrop_frames", CFG_INT, "1", "frames unmatched detections stay as backdrops"},
    {"track.bdd.memo_momentum", CFG_FLOAT, "0.8", "track embedding = (1 - m) * old + m * new"},
    {"track.bdd.nms_conf_thr", CFG_FLOAT, "0.5", "low-score detection matched above this: suppressed"},
    {"track.bdd.nms_backdrop_iou_thr", CFG_FLOAT, "0.3", "duplicate IoU for low-score detections and backdrops"},
    {"track.bdd.nms_class_iou_thr", CFG_FLOAT, "0.7", "duplicate IoU for detections with score >= obj_score_thr"},
    {"track.bdd.with_cats", CFG_BOOL, "false", "only match tracks of the same label"},
    {"track.iou.base", CFG_STRING, "tao", "detection handling and score thresholds of the IoU baseline: tao | bdd"},
    {"track.iou.match_iou_thr", CFG_FLOAT, "0.3", "IoU baseline: a detection continues a track when IoU > this"},
    {"track.iou.hungarian", CFG_BOOL, "true", "IoU baseline: optimal assignment (false: greedy in score order)"},
    {"track.histogram.bins", CFG_INT, "4", "histogram embedder: levels per RGB channel (bins^3 joint bins)"},
    {"track.histogram.grid", CFG_INT, "2", "histogram embedder: grid x grid cells per box (4 bins, 2x2: 256-d)"},
    {"track.histogram.scale", CFG_FLOAT, "4", "histogram embedder: vector length (bi-softmax temperature)"},
    {"track.histogram.inner", CFG_FLOAT, "1", "histogram embedder: central fraction of the box used (less background)"},
    {NULL, 0, NULL, NULL}};

int tracker_opts_from_config(const config *cfg, tracker_opts *o) {
  const char *name = config_str(cfg, "track.tracker");
  int kind = tracker_kind_parse(name);
  if (kind < 0) return masa_error("track.tracker: expected tao, bdd or iou, got '%s'", name);
  const char *base_name = config_str(cfg, "track.iou.base");
  int base = tracker_kind_parse(base_name);
  if (base != TRACKER_TAO && base != TRACKER_BDD)
    return masa_error("track.iou.base: expected tao or bdd, got '%s'", base_name);
  tracker_default_opts((tracker_kind)kind, o);
  o->iou_base = (tracker_kind)base;
  o->iou_match_thr = config_float(cfg, "track.iou.match_iou_thr");
  o->iou_hungarian = config_bool(cfg, "track.iou.hungarian");
  o->distractor_score_thr = config_float(cfg, "track.tao.distractor_score_thr");
  o->distractor_nms_thr = config_float(cfg, "track.tao.distractor_nms_thr");
  o->max_distance = config_float(cfg, "track.tao.max_distance");
  o->fps = config_float(cfg, "track.tao.fps");
  o->memo_backdrop_frames = (int)config_int(cfg, "track.bdd.memo_backdrop_frames");
  o->nms_conf_thr = config_float(cfg, "track.bdd.nms_conf_thr");
  o->nms_backdrop_iou_thr = config_float(cfg, "track.bdd.nms_backdrop_iou_thr");
  o->nms_class_iou_thr = config_float(cfg, "track.bdd.nms_class_iou_thr");
  o->with_cats = config_bool(cfg, "track.bdd.with_cats");
  const char *p = (kind == TRACKER_BDD || (kind == TRACKER_IOU && base == TRACKER_BDD)) ? "track.bdd." : "track.tao.";
  char key[96];
#define KEY(s) (snprintf(key, sizeof key, "%s%s", p, s), key)
  o->init_score_thr = config_float(cfg, KEY("init_score_thr"));
  o->obj_score_thr = config_float(cfg, KEY("obj_score_thr"));
  o->match_score_thr = config_float(cfg, KEY("match_score_thr"));
  o->memo_tracklet_frames = (int)config_int(cfg, KEY("memo_tracklet_frames"));
  o->memo_momentum = config_float(cfg, KEY("memo_momentum"));
#undef KEY
  if (o->memo_tracklet_frames < 1)
    return masa_error("%smemo_tracklet_frames: expected >= 1, got %d", p, o->memo_tracklet_frames);
  if (o->memo_backdrop_frames < 0)
    return masa_error("track.bdd.memo_backdrop_frames: expected >= 0, got %d", o->memo_backdrop_frames);
  if (o->fps < 0) return masa_error("track.tao.fps: expected >= 0 (0: the sequence's), got %g", o->fps);
  return MASA_OK;
}

