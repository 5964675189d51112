// `masa track --frames DIR [--dets DETS] --out RESULT [--embedder masa|histogram|iou]
//  [--weights W.h5] [--format mot|tao|bdd] [--draw DIR] [--config CFG] [--set k=v]...`:
// tracks one video given per-frame detections (masa-spec §7.1: "test with given observations").
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/draw.h"
#include "data/synth.h"  // make_dirs
#include "eval/det_reader.h"
#include "eval/detector_masa.h"
#include "eval/embedder.h"
#include "eval/tracker.h"
#include "eval/tracker_output.h"
#include "model/nms.h"

static const char *track_usage =
    "usage: masa track --frames DIR [--dets DETS] --out RESULT [options]\n"
    "  --frames DIR        a MOTChallenge sequence (seqinfo.ini + img1/) or a folder of images\n"
    "  --dets DETS         MOTChallenge det.txt, COCO results JSON or BDD100K JSON\n"
    "                      (default for a MOT sequence: DIR/det/det.txt); `masa`: MASA's own\n"
    "                      distilled detector (RPN + box head of --weights; the default for an\n"
    "                      image folder when --weights is given)\n"
    "  --out RESULT        .txt: MOTChallenge results; .json: TAO results (BDD100K for BDD input)\n"
    "  --format F          mot | tao | bdd: overrides the format chosen from RESULT's extension\n"
    "  --embedder E        masa (MASA track head; the default when --weights is given),\n"
    "                      histogram (colour histograms; the default otherwise),\n"
    "                      iou (no appearance: the IoU baseline)\n"
    "  --weights W.h5      MASA weights for --embedder masa\n"
    "  --device D          cpu (default) | cuda | cuda:N: where the MASA model runs\n"
    "  --draw DIR          write every frame with its tracks (and DIR/tracks.mp4 if ffmpeg is found)\n"
    "  --config CFG, --set track.KEY=V   tracker settings (`masa config` lists the track.* keys)\n";

// The MASA embedder (backbone -> adapter -> track head of the recipe's model.* keys).
static int make_masa_embedder(const char *weights, const char *device_name, const config *cfg,
                              embedder *e) {
  if (!weights) return masa_error("--embedder masa needs --weights W.h5");
  return embedder_masa_create(cfg, weights, device_name, e);
}

// Single-quotes s for /bin/sh.
static void shell_quote(const char *s, char *out, size_t cap) {
  size_t k = 0;
  out[k++] = '\'';
  for (; *s && k + 5 < cap; s++) {
    if (*s == '\'') {
      memcpy(out + k, "'\\''", 4);
      k += 4;
    } else {
      out[k++] = *s;
    }
  }
  out[k++] = '\'';
  out[k] = 0;
}

static void draw_tracks(image_u8 *im, int n, const float *boxes, const int64_t *ids) {
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0) continue;
    uint8_t rgb[3];
    draw_id_colour(ids[i] + 1, rgb);
    const float *b = boxes + 4 * i;
    draw_box(im, b[0], b[1], b[2], b[3], rgb, 2);
    char txt[24];
    snprintf(txt, sizeof txt, "%lld", (long long)ids[i] + 1);
    int ty = (int)b[1] - 12;
    draw_text(im, (int)b[0], ty < 0 ? (int)b[1] + 3 : ty, txt, rgb, 2);
  }
}

static void encode_video(const char *dir, double fps) {
  if (system("command -v ffmpeg > /dev/null 2>&1") != 0) {
    log_info("track: ffmpeg not found; frames are in %s (no video)", dir);
    return;
  }
  char in[2200], out[2200], qin[4500], qout[4500], cmd[10000];
  snprintf(in, sizeof in, "%s/%%06d.jpg", dir);
  snprintf(out, sizeof out, "%s/tracks.mp4", dir);
  shell_quote(in, qin, sizeof qin);
  shell_quote(out, qout, sizeof qout);
  snprintf(cmd, sizeof cmd,
           "ffmpeg -y -loglevel error -framerate %g -i %s -vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' -pix_fmt yuv420p %s",
           fps, qin, qout);
  if (system(cmd) != 0) log_warn("track: ffmpeg failed; frames are in %s", dir);
  else log_info("track: video written to %s", out);
}
typedef struct {
  const char *frames, *dets, *out, *format, *embedder, *weights, *draw, *device;
} track_args;

static int run_track(const track_args *a, const config *cfg) {
  tracker_opts to;
  if (tracker_opts_from_config(cfg, &to) != MASA_OK) return MASA_ERR;
  const char *emb_name = a->embedder ? a->embedder : a->weights ? "masa" : "histogram";
  embedder emb = {0};
  int use_iou = !strcmp(emb_name, "iou") || to.kind == TRACKER_IOU;
  if (!strcmp(emb_name, "iou")) {
    if (to.kind != TRACKER_IOU) to.iou_base = to.kind;  // the configured tracker's thresholds
    to.kind = TRACKER_IOU;
  } else if (!strcmp(emb_name, "histogram")) {
    histogram_embedder_opts ho;
    if (histogram_embedder_opts_from_config(cfg, &ho) != MASA_OK || embedder_histogram_create(&ho, &emb) != MASA_OK)
      return MASA_ERR;
  } else if (!strcmp(emb_name, "masa")) {
    if (make_masa_embedder(a->weights, a->device, cfg, &emb) != MASA_OK) return MASA_ERR;
  } else {
    return masa_error("--embedder: expected masa, histogram or iou, got '%s'", emb_name);
  }
  if (use_iou) embedder_free(&emb);
  to.dim = use_iou ? 0 : emb.dim;

  frame_seq fs;
  if (frame_seq_open(a->frames, &fs) != MASA_OK) {
    embedder_free(&emb);
    return MASA_ERR;
  }
  if (to.fps <= 0) to.fps = fs.fps > 0 ? fs.fps : 30;
  char det_default[1200];
  const char *det_path = a->dets && strcmp(a->dets, "masa") ? a->dets : NULL;
  if (!det_path && fs.is_mot && !(a->dets && !strcmp(a->dets, "masa"))) {
    snprintf(det_default, sizeof det_default, "%s/det/det.txt", fs.seq_dir);
    det_path = det_default;
  }
  int rc = MASA_OK;
  det_set ds = {0};
  char det_desc[64] = "";
  int self_detect = a->dets ? !strcmp(a->dets, "masa")
                            : !fs.is_mot && a->weights && !use_iou && !strcmp(emb_name, "masa");
  if (self_detect && !a->weights) {
    rc = masa_error("--dets masa needs --weights (a model with its RPN and box head)");
  } else if (self_detect) {
    // No detections given: MASA's own distilled detector proposes the boxes.
    snprintf(det_desc, sizeof det_desc, "MASA's own detector");
    det_path = det_desc;
    rc = masa_detect_sequence(cfg, a->weights, a->device, &fs, &ds);
  } else if (!det_path) {
    rc = masa_error("--dets is required when --frames is not a MOTChallenge sequence "
                    "(or give --weights of a model with its box head to detect with MASA)");
  } else {
    rc = det_read(det_path, -1, &fs, &ds);
  }
  if (rc != MASA_OK) {
    frame_seq_free(&fs);
    embedder_free(&emb);
    return MASA_ERR;
  }
  if (ds.dropped)
    log_warn("track: %s: %lld detections on frames outside %s skipped", det_path, (long long)ds.dropped, a->frames);
  int fmt;
  if (a->format) {
    fmt = results_format_parse(a->format);
    if (fmt < 0) rc = masa_error("--format: expected mot, tao or bdd, got '%s'", a->format);
  } else {
    const char *dot = strrchr(a->out, '.');
    fmt = dot && !strcmp(dot, ".json") ? (ds.format == DETS_BDD ? RESULTS_BDD : RESULTS_TAO) : RESULTS_MOT;
  }
  if (rc == MASA_OK && a->draw && make_dirs(a->draw) != MASA_OK) rc = MASA_ERR;

  int det_nms = config_bool(cfg, "track.det_nms");
  float det_nms_thr = (float)config_float(cfg, "track.det_nms_thr");
  static const char *kind_names[3] = {"tao", "bdd", "iou"};
  log_info("track: %s, %d frames, %lld detections (%s); tracker %s%s%s, embedder %s", fs.name, fs.num_frames,
           (long long)ds.n, det_path, kind_names[to.kind], to.kind == TRACKER_IOU ? " on " : "",
           to.kind == TRACKER_IOU ? kind_names[to.iou_base] : "", use_iou ? "none" : emb_name);
  tracker *tr = tracker_create(&to);
  track_results res = {0};
  int64_t maxn = 1;
  for (int t = 0; t < fs.num_frames; t++)
    if (ds.start[t + 1] - ds.start[t] > maxn) maxn = ds.start[t + 1] - ds.start[t];
  float *boxes = mallocCheck((size_t)maxn * 4 * sizeof(float)), *scores = mallocCheck((size_t)maxn * sizeof(float));
  float *embeds = use_iou ? NULL : mallocCheck((size_t)maxn * (size_t)to.dim * sizeof(float));
  float *all_scores = mallocCheck((size_t)maxn * sizeof(float));
  int *labels = mallocCheck((size_t)maxn * sizeof(int));
  int64_t *keep = mallocCheck((size_t)maxn * sizeof(int64_t)), *ids = mallocCheck((size_t)maxn * sizeof(int64_t));
  float *all_boxes = mallocCheck((size_t)maxn * 4 * sizeof(float));
  int64_t max_id = -1;
  progress pr;
  double t0 = time_now();
  progress_begin(&pr, "track", fs.num_frames, "frames");
  for (int t = 0; t < fs.num_frames && rc == MASA_OK; t++) {
    const det_box *d = ds.dets + ds.start[t];
    int64_t nd = ds.start[t + 1] - ds.start[t];
    for (int64_t i = 0; i < nd; i++) {
      memcpy(all_boxes + 4 * i, d[i].box, 4 * sizeof(float));
      all_scores[i] = d[i].score;
    }
    int64_t n = nd;
    if (det_nms && nd > 0) n = nms_cpu(nd, all_boxes, all_scores, det_nms_thr, keep);
    for (int64_t i = 0; i < n; i++) {
      int64_t s = det_nms ? keep[i] : i;
      memcpy(boxes + 4 * i, d[s].box, 4 * sizeof(float));
      scores[i] = d[s].score;
      labels[i] = d[s].label;
    }
    image_u8 im = {0};
    if ((!use_iou || a->draw) && frame_seq_load(&fs, t, &im) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    if (!use_iou && n > 0) rc = emb.embed(&emb, &im, (int)n, boxes, embeds);
    if (rc == MASA_OK) rc = tracker_step(tr, t, (int)n, boxes, scores, labels, embeds, ids);
    for (int64_t i = 0; i < n && rc == MASA_OK; i++)
      if (ids[i] >= 0) {
        track_results_push(&res, t, ids[i], boxes + 4 * i, scores[i], labels[i]);
        if (ids[i] > max_id) max_id = ids[i];
      }
    if (rc == MASA_OK && a->draw) {
      draw_tracks(&im, (int)n, boxes, ids);
      char path[2200];
      snprintf(path, sizeof path, "%s/%06d.jpg", a->draw, t + 1);
      rc = image_write_jpeg(&im, 90, path);
    }
    image_free(&im);
    char extra[64];
    snprintf(extra, sizeof extra, "tracks %lld", (long long)max_id + 1);
    progress_update(&pr, t + 1, extra);
  }
  progress_end(&pr, fs.num_frames);
  if (rc == MASA_OK) rc = track_results_write(a->out, (results_format)fmt, &res, &fs, &ds);
  if (rc == MASA_OK) {
    static const char *fmt_names[3] = {"MOTChallenge", "TAO", "BDD100K"};
    log_info("track: %lld boxes in %lld tracks over %d frames (%.1f frames/s) -> %s (%s)", (long long)res.n,
             (long long)max_id + 1, fs.num_frames, fs.num_frames / (time_now() - t0 + 1e-9), a->out, fmt_names[fmt]);
    if (a->draw) encode_video(a->draw, to.fps > 0 ? to.fps : 30);
  }
  free(boxes), free(scores), free(embeds), free(all_scores), free(labels), free(keep), free(ids), free(all_boxes);
  track_results_free(&res);
  tracker_free(tr);
  det_set_free(&ds);
  frame_seq_free(&fs);
  embedder_free(&emb);
  return rc;
}

int cmd_track(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char **rest = mallocCheck((size_t)(argc > 0 ? argc : 1) * sizeof(char *));
  int nrest = 0, rc = cli_parse_common(argc, argv, &cfg, rest, &nrest);
  track_args a = {0};
  for (int i = 0; i < nrest && rc == MASA_OK; i++) {
    const char *s = rest[i], *val = i + 1 < nrest ? rest[i + 1] : NULL;
    const char **dst = !strcmp(s, "--frames")     ? &a.frames
                       : !strcmp(s, "--dets")     ? &a.dets
                       : !strcmp(s, "--out")      ? &a.out
                       : !strcmp(s, "--format")   ? &a.format
                       : !strcmp(s, "--embedder") ? &a.embedder
                       : !strcmp(s, "--weights")  ? &a.weights
                       : !strcmp(s, "--draw")     ? &a.draw
                       : !strcmp(s, "--device")   ? &a.device
                                                  : NULL;
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
      fputs(track_usage, stdout);
      free(rest);
      config_free(&cfg);
      return 0;
    }
    if (!dst) rc = masa_error("track: unexpected argument '%s'", s);
    else if (!val) rc = masa_error("%s needs a value", s);
    else *dst = val, i++;
  }
  free(rest);
  if (rc == MASA_OK && (!a.frames || !a.out)) {
    fprintf(stderr, "masa track: --frames and --out are required\n%s", track_usage);
    config_free(&cfg);
    return 1;
  }
  if (rc == MASA_OK) rc = run_track(&a, &cfg);
  config_free(&cfg);
  if (rc != MASA_OK) {
    fprintf(stderr, "masa track: %s\n", masa_errmsg());
    return 1;
  }
  return 0;
}
