// Trackers against tests/oracle_tracker.py (PyTorch transcriptions of MasaTaoTracker and
// MasaBDDTracker from masa-spec §7.2/§7.3, and the IoU baseline): every detection of every frame
// must get exactly the same id (no tolerance: ids are discrete, and the oracle keeps rounding-
// sensitive decisions >= 1e-4 from their boundaries). Then hand-made cases: empty frames, ties,
// memory length vs an occlusion, motion gating, backdrop suppression, and the config schema.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/config.h"
#include "core/error.h"
#include "eval/tracker.h"
#include "harness.h"

enum {
  O_KIND, O_DIM, O_INIT, O_OBJ, O_MATCH, O_MEMO, O_MOM, O_DTHR, O_DNMS, O_MAXD, O_FPS, O_MEMO_BD, O_NMS_CONF,
  O_BD_IOU, O_CLS_IOU, O_CATS, O_IOU_BASE, O_IOU_THR, O_HUNG, O_COUNT
};

static h5file *F;

static int64_t *rd_i64(const char *key, int64_t *numel) {
  int64_t *p, shape[TENSOR_MAX_DIMS];
  int nd;
  if (h5_read_i64(F, key, &p, &nd, shape) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    exit(1);
  }
  *numel = 1;
  for (int k = 0; k < nd; k++) *numel *= shape[k];
  return p;
}

static void opts_from_vector(const float *v, tracker_opts *o) {
  tracker_default_opts((tracker_kind)(int)v[O_KIND], o);
  o->dim = (int)v[O_DIM];
  o->init_score_thr = v[O_INIT];
  o->obj_score_thr = v[O_OBJ];
  o->match_score_thr = v[O_MATCH];
  o->memo_tracklet_frames = (int)v[O_MEMO];
  o->memo_momentum = v[O_MOM];
  o->distractor_score_thr = v[O_DTHR];
  o->distractor_nms_thr = v[O_DNMS];
  o->max_distance = v[O_MAXD];
  o->fps = v[O_FPS];
  o->memo_backdrop_frames = (int)v[O_MEMO_BD];
  o->nms_conf_thr = v[O_NMS_CONF];
  o->nms_backdrop_iou_thr = v[O_BD_IOU];
  o->nms_class_iou_thr = v[O_CLS_IOU];
  o->with_cats = (int)v[O_CATS];
  o->iou_base = (tracker_kind)(int)v[O_IOU_BASE];
  o->iou_match_thr = v[O_IOU_THR];
  o->iou_hungarian = (int)v[O_HUNG];
}

typedef struct {
  int64_t cases, dets, output, continued, mismatched_cases, mismatched_dets;
  char first_bad[256];
} kind_stats;

static void run_oracle_case(int c, kind_stats *st) {
  char key[64];
  int64_t n_opts, nf, nb, ns, nl, ne, ni;
#define K(s) (snprintf(key, sizeof key, "c%d.%s", c, s), key)
  float *ov = oracle_read_any(F, K("opts"), &n_opts, NULL, NULL);
  masa_assert(n_opts == O_COUNT);
  tracker_opts o;
  opts_from_vector(ov, &o);
  int64_t *frames = rd_i64(K("frames"), &nf);
  float *boxes = oracle_read_any(F, K("boxes"), &nb, NULL, NULL);
  float *scores = oracle_read_any(F, K("scores"), &ns, NULL, NULL);
  int64_t *labels64 = rd_i64(K("labels"), &nl);
  float *embeds = oracle_read_any(F, K("embeds"), &ne, NULL, NULL);
  int64_t *ids = rd_i64(K("ids"), &ni);
#undef K
  masa_assert(nb == 4 * ns && nl == ns && ni == ns && ne == ns * o.dim);
  int *labels = mallocCheck((size_t)(ns + 1) * sizeof(int));
  for (int64_t i = 0; i < ns; i++) labels[i] = (int)labels64[i];
  int64_t *got = mallocCheck((size_t)(ns + 1) * sizeof(int64_t));
  // Ids seen so far in the current video, to count continued tracks.
  int64_t *seen = callocCheck((size_t)ns + 1, sizeof(int64_t));
  int nseen = 0;
  tracker *t = tracker_create(&o);
  kind_stats *s = &st[o.kind];
  s->cases++;
  int64_t off = 0, bad = 0;
  for (int64_t f = 0; f < nf / 2; f++) {
    int64_t fid = frames[2 * f], n = frames[2 * f + 1];
    if (fid == 0) nseen = 0;
    int rc = tracker_step(t, fid, (int)n, boxes + 4 * off, scores + off, labels + off, embeds + off * o.dim, got + off);
    masa_assert(rc == MASA_OK);
    for (int64_t i = off; i < off + n; i++) {
      if (got[i] != ids[i] && bad++ == 0 && !s->mismatched_cases)
        snprintf(s->first_bad, sizeof s->first_bad, "case %d frame %lld det %lld: id %lld, oracle %lld", c,
                 (long long)fid, (long long)(i - off), (long long)got[i], (long long)ids[i]);
      if (ids[i] < 0) continue;
      s->output++;
      int known = 0;
      for (int q = 0; q < nseen && !known; q++) known = seen[q] == ids[i];
      if (known) s->continued++;
      else seen[nseen++] = ids[i];
    }
    off += n;
  }
  masa_assert(off == ns);
  s->dets += ns;
  s->mismatched_dets += bad;
  s->mismatched_cases += bad > 0;
  tracker_free(t);
  free(ov), free(frames), free(boxes), free(scores), free(labels64), free(embeds), free(ids);
  free(labels), free(got), free(seen);
}

static void check_oracle(const char *path) {
  F = oracle_open(path);
  int64_t one;
  int64_t *nc = rd_i64("num_cases", &one);
  kind_stats st[3];
  memset(st, 0, sizeof st);
  for (int c = 0; c < (int)nc[0]; c++) run_oracle_case(c, st);
  static const char *names[3] = {"MasaTaoTracker", "MasaBDDTracker", "IoU baseline"};
  for (int k = 0; k < 3; k++) {
    char what[512];
    snprintf(what, sizeof what,
             "%s vs oracle: %lld cases, %lld detections, %lld output (%lld continue a track), %lld ids differ%s%s",
             names[k], (long long)st[k].cases, (long long)st[k].dets, (long long)st[k].output,
             (long long)st[k].continued, (long long)st[k].mismatched_dets, st[k].mismatched_dets ? "; first: " : "",
             st[k].first_bad);
    // The cases must exercise matching, not only track creation.
    check_true(what, st[k].cases > 0 && st[k].mismatched_dets == 0 && st[k].continued > st[k].output / 4);
  }
  free(nc);
  h5_close(F);
}

// ---------------------------------------------------------------------------- hand-made cases

#define D 4

// One object per frame with a fixed appearance; returns the ids given in frames [0, nframes).
static void one_object(tracker *t, const int64_t *fids, int nframes, const float *xs, int64_t *ids) {
  for (int f = 0; f < nframes; f++) {
    float box[4] = {xs[f], 10, xs[f] + 20, 40}, score = 0.9f, emb[D] = {2, 0, 0, 1};
    masa_assert(tracker_step(t, fids[f], 1, box, &score, NULL, emb, &ids[f]) == MASA_OK);
  }
}

// Object A is seen at frames 0 and 1, occluded, and back at frame `back`; object B (elsewhere,
// other appearance) is seen in every frame, so frames keep coming. Returns A's id at `back`
// (A has id 0; a new id there is 2).
static int64_t occluded_return(int memo, int back) {
  tracker_opts o;
  tracker_default_opts(TRACKER_TAO, &o);
  o.dim = D;
  o.max_distance = -1;
  o.memo_tracklet_frames = memo;
  tracker *t = tracker_create(&o);
  int64_t ids[2], ret = -1;
  for (int f = 0; f <= back; f++) {
    int a = f <= 1 || f == back;
    float boxes[8] = {300, 300, 340, 380, 10, 10, 30, 40}, scores[2] = {0.8f, 0.9f};
    float emb[2 * D] = {0, 0, 3, 0, 2, 0, 0, 1};
    masa_assert(tracker_step(t, f, a ? 2 : 1, boxes, scores, NULL, emb, ids) == MASA_OK);
    if (a && f == back) ret = ids[1];
  }
  tracker_free(t);
  return ret;
}

static void check_memory_and_gating(void) {
  // A gap of 12 frames (last seen 1, back at 13). Tracks are dropped after matching, once
  // frame - last_frame >= memo, so a track can be matched up to memo frames after it was seen.
  check_true("memo_tracklet_frames 10: an object back after 12 frames gets a new id", occluded_return(10, 13) == 2);
  check_true("memo_tracklet_frames 30: the same object keeps its id", occluded_return(30, 13) == 0);
  check_true("memory boundary: gap 12, memo 11: forgotten", occluded_return(11, 13) == 2);
  check_true("memory boundary: gap 12, memo 12: kept (deletion runs after matching)", occluded_return(12, 13) == 0);
  // Frames without detections do not age tracks (the official trackers return early).
  tracker_opts o;
  tracker_default_opts(TRACKER_TAO, &o);
  o.dim = D;
  o.max_distance = -1;
  int64_t fids[3] = {0, 1, 13}, ids[3];
  float xs[3] = {10, 12, 14};
  tracker *t = tracker_create(&o);
  one_object(t, fids, 3, xs, ids);
  check_true("frames 2..12 not stepped (or empty): no ageing, the id is kept", ids[0] == 0 && ids[1] == 0 && ids[2] == 0);
  tracker_free(t);

  // Motion gating: the same appearance jumping 300 px in one frame.
  tracker_default_opts(TRACKER_TAO, &o);
  o.dim = D;
  int64_t f2[2] = {0, 1}, id2[2];
  float jump[2] = {10, 310};
  t = tracker_create(&o);
  one_object(t, f2, 2, jump, id2);
  check_true("gating on (100 px at 30 fps): a 300 px jump starts a new track", id2[0] == 0 && id2[1] == 1);
  tracker_free(t);
  o.max_distance = -1;
  t = tracker_create(&o);
  one_object(t, f2, 2, jump, id2);
  check_true("gating off: the same jump keeps the id", id2[1] == 0);
  tracker_free(t);
}

static void check_edges(void) {
  tracker_opts o;
  tracker_default_opts(TRACKER_TAO, &o);
  o.dim = D;
  tracker *t = tracker_create(&o);
  int64_t ids[3];
  check_true("empty frame", tracker_step(t, 0, 0, NULL, NULL, NULL, NULL, ids) == MASA_OK && tracker_num_tracks(t) == 0);
  // Three identical detections with equal scores: stable order, the first survives distractor
  // removal only if its score is >= 0.5 (these are 0.4: the 2nd and 3rd overlap the 1st).
  float boxes[12] = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10}, scores[3] = {0.4f, 0.4f, 0.4f};
  float emb[3 * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  tracker_step(t, 0, 3, boxes, scores, NULL, emb, ids);
  check_true("equal scores: the first input wins, its low-score duplicates are distractors",
             ids[0] == 0 && ids[1] == -1 && ids[2] == -1);
  scores[1] = 0.6f;
  tracker_step(t, 0, 3, boxes, scores, NULL, emb, ids);
  check_true("a higher-scored duplicate (>= 0.5) is visited first and kept; the 0.4 ones dropped",
             ids[1] == 0 && ids[0] == -1 && ids[2] == -1);
  // Two tracks with the same appearance, then one detection equally similar to both: the first
  // maximum of the row (the older track) wins, as torch.max.
  o.max_distance = -1;
  float tb[8] = {0, 0, 10, 10, 100, 0, 110, 10}, ts[2] = {0.9f, 0.8f}, te[2 * D] = {1, 1, 0, 0, 1, 1, 0, 0};
  tracker_step(t, 0, 2, tb, ts, NULL, te, ids);
  float qb[4] = {50, 0, 60, 10}, qs = 0.9f;
  int64_t qid;
  tracker_step(t, 1, 1, qb, &qs, NULL, te, &qid);
  check_true("exact tie between two tracks: the first in memory order wins", ids[0] == 0 && ids[1] == 1 && qid == 0);
  check_true("negative count is an error", tracker_step(t, 1, -1, boxes, scores, NULL, emb, ids) == MASA_ERR);
  check_true("missing embeddings is an error", tracker_step(t, 1, 1, boxes, scores, NULL, NULL, ids) == MASA_ERR);
  tracker_free(t);

  // BDD: a low-score detection whose best memory entry is a track (conf > 0.6 and > 0.5) is
  // suppressed (-2: neither output nor a new track nor a backdrop).
  tracker_default_opts(TRACKER_BDD, &o);
  o.dim = D;
  t = tracker_create(&o);
  float b1[4] = {0, 0, 10, 10}, s1 = 0.9f, e1[D] = {4, 0, 0, 0};
  tracker_step(t, 0, 1, b1, &s1, NULL, e1, ids);
  float b2[8] = {0, 0, 10, 10, 50, 50, 60, 60}, s2[2] = {0.9f, 0.25f}, e2[2 * D] = {0, 4, 0, 0, 4, 0, 0, 0};
  tracker_step(t, 1, 2, b2, s2, NULL, e2, ids);
  check_true("BDD: the new appearance starts track 1, the low-score look-alike of track 0 is not output",
             ids[0] == 1 && ids[1] == -1 && tracker_num_tracks(t) == 2);
  tracker_free(t);

  // IoU baseline: two boxes swapping places far apart keep ids by overlap alone.
  tracker_default_opts(TRACKER_IOU, &o);
  t = tracker_create(&o);
  float bb[8] = {0, 0, 20, 20, 100, 0, 120, 20}, ss[2] = {0.9f, 0.8f};
  tracker_step(t, 0, 2, bb, ss, NULL, NULL, ids);
  float bb2[8] = {102, 1, 122, 21, 1, 1, 21, 21};
  int64_t ids2[2];
  tracker_step(t, 1, 2, bb2, ss, NULL, NULL, ids2);
  check_true("IoU baseline follows overlap", ids[0] == 0 && ids[1] == 1 && ids2[0] == 1 && ids2[1] == 0);
  tracker_free(t);
}

static void check_config(void) {
  config cfg;
  config_init(&cfg);
  config_register(&cfg, track_schema);
  tracker_opts o, d;
  int ok = tracker_opts_from_config(&cfg, &o) == MASA_OK;
  tracker_default_opts(TRACKER_TAO, &d);
  check_true("track.* defaults = the official demo TAO tracker",
             ok && o.kind == TRACKER_TAO && o.init_score_thr == d.init_score_thr && o.obj_score_thr == 0.01 &&
                 o.max_distance == 100 && o.fps == 30 && o.memo_tracklet_frames == 10 && o.memo_momentum == 0.8);
  ok = config_set_arg(&cfg, "track.tracker=bdd") == MASA_OK && config_set_arg(&cfg, "track.bdd.memo_tracklet_frames=300") == MASA_OK &&
       tracker_opts_from_config(&cfg, &o) == MASA_OK;
  check_true("track.tracker=bdd reads track.bdd.* (memory 300 for long occlusions)",
             ok && o.kind == TRACKER_BDD && o.init_score_thr == 0.5 && o.match_score_thr == 0.6 && o.memo_tracklet_frames == 300);
  ok = config_set_arg(&cfg, "track.tracker=sort") == MASA_OK && tracker_opts_from_config(&cfg, &o) == MASA_ERR &&
       strstr(masa_errmsg(), "track.tracker") != NULL;
  check_true("an unknown tracker name is an error naming the key", ok);
  config_free(&cfg);
}

int main(int argc, char **argv) {
  test_begin("tracker", 1234);
  if (argc < 2) {
    fprintf(stderr, "usage: test_tracker ORACLE.h5\n");
    return 1;
  }
  check_oracle(argv[1]);
  check_memory_and_gating();
  check_edges();
  check_config();
  return test_end();
}
