// `masa bench track`: what tracking and evaluation cost on this CPU.
// (1) Tracking speed: frames/s of embedding + TAO tracker for the demo model (configs/demo.cfg,
//     its test scale) and MASA-R50 (configs/masa_r50.cfg, 1024x1024), random-init weights (speed
//     only), N boxes a frame; then the tracker alone (TAO and BDD, 256-d embeddings) per frame.
// (2) Evaluation speed: `masa eval` (CLEAR + Identity + HOTA, MOT17 rules) against TrackEval's
//     MotChallenge2DBox (tools/bench_eval_trackeval.py, one core, in-process timing) on the same
//     generated files: synthetic gt.txt + seqinfo.ini and results with box noise, misses, false
//     positives and id switches. The combined HOTA, MOTA and IDF1 of both must agree.
// Both sides are single-threaded in (2); the time covers reading, preprocessing and metrics.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <omp.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/check.h"
#include "core/error.h"
#include "core/h5io.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/synth.h"  // make_dirs
#include "eval/embedder.h"
#include "eval/evaluate.h"
#include "eval/tracker.h"
#include "model/masa_model.h"

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

static const char *bench_track_usage =
    "usage: masa bench track [--quick] [--only track|eval] [--boxes N] [--demo-frames N]\n"
    "                        [--r50-frames N] [--tracker-frames N] [--eval-seqs N] [--eval-frames N]\n"
    "                        [--seed S] [--python PY | --no-python] [--threads N]\n"
    "  Tracking: frames/s with embedding for the demo model (default 20 frames) and MASA-R50 at\n"
    "  1024 (default 3 frames; 0 skips it), N boxes a frame (default 50), random-init weights;\n"
    "  tracker-only ms/frame for TAO and BDD (default 2000 frames, 256-d embeddings).\n"
    "  Evaluation: masa eval vs TrackEval on generated MOT files (default 100 sequences x 500\n"
    "  frames, 10-20 objects each). --quick: 4 demo frames, no R50, 200 tracker frames, 4 x 100.";

typedef struct {
  long boxes, demo_frames, r50_frames, tracker_frames, eval_seqs, eval_frames, seed;
  int do_track, do_eval, no_python;
  const char *python;
} track_bench_args;

static const char *source_dir(void) {
  return getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR;
}

static int parse_args(int nrest, char **rest, track_bench_args *a) {
  for (int i = 0; i < nrest; i++) {  // --quick first, so explicit sizes override it
    if (strcmp(rest[i], "--quick") != 0) continue;
    a->demo_frames = 4, a->r50_frames = 0, a->tracker_frames = 200;
    a->eval_seqs = 4, a->eval_frames = 100;
  }
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i], *v = i + 1 < nrest ? rest[i + 1] : NULL;
    if (!strcmp(k, "--quick")) continue;
    if (!strcmp(k, "--no-python")) {
      a->no_python = 1;
      continue;
    }
    if (!v) return masa_error("bench track: '%s' needs a value or is unknown", k);
    i++;
    if (!strcmp(k, "--python")) {
      a->python = v;
      continue;
    }
    if (!strcmp(k, "--only")) {
      if (!strcmp(v, "track")) a->do_eval = 0;
      else if (!strcmp(v, "eval")) a->do_track = 0;
      else return masa_error("bench track: --only expects track or eval, got '%s'", v);
      continue;
    }
    char *end;
    long n = strtol(v, &end, 10);
    long *dst = !strcmp(k, "--boxes")            ? &a->boxes
                : !strcmp(k, "--demo-frames")    ? &a->demo_frames
                : !strcmp(k, "--r50-frames")     ? &a->r50_frames
                : !strcmp(k, "--tracker-frames") ? &a->tracker_frames
                : !strcmp(k, "--eval-seqs")      ? &a->eval_seqs
                : !strcmp(k, "--eval-frames")    ? &a->eval_frames
                : !strcmp(k, "--seed")           ? &a->seed
                                                 : NULL;
    if (!dst) return masa_error("bench track: unknown argument '%s'", k);
    int min = dst == &a->r50_frames || dst == &a->seed ? 0 : 1;
    if (!*v || *end || n < min || n > 1000000)
      return masa_error("bench track: %s expects an integer >= %d, got '%s'", k, min, v);
    *dst = n;
  }
  return MASA_OK;
}

// ---------------------------------------------------------------- (1) tracking speed

// Box i at frame t: fixed size, drifting and wrapping around the image, so that the tracker keeps
// matching the same objects frame after frame. x1 y1 x2 y2.
static void scene_boxes(int n, int t, int w, int h, uint64_t seed, float *boxes, float *scores) {
  for (int i = 0; i < n; i++) {
    uint64_t k = 8 * (uint64_t)i;
    float bw = w * (0.04f + 0.12f * rng_uniform(seed, 21, k));
    float bh = h * (0.06f + 0.18f * rng_uniform(seed, 21, k + 1));
    float fx = rng_uniform(seed, 21, k + 2) + 0.002f * t * (rng_uniform(seed, 21, k + 3) - 0.5f);
    float fy = rng_uniform(seed, 21, k + 4) + 0.002f * t * (rng_uniform(seed, 21, k + 5) - 0.5f);
    fx -= floorf(fx), fy -= floorf(fy);
    float x1 = fx * (w - bw), y1 = fy * (h - bh);
    boxes[4 * i] = x1, boxes[4 * i + 1] = y1, boxes[4 * i + 2] = x1 + bw, boxes[4 * i + 3] = y1 + bh;
    scores[i] = 0.3f + 0.7f * rng_uniform(seed, 21, k + 6);
  }
}

typedef struct {
  char name[64];
  long frames;
  double ms_per_frame;
} speed_row;

// Embedding + TAO tracking of `frames` frames (after one untimed warm-up frame) with the model of
// `cfg_name`, random-init weights written to a temporary HDF5 file for embedder_masa_create.
static int time_model(const char *cfg_name, const track_bench_args *a, long frames, speed_row *row) {
  char path[1200];
  snprintf(path, sizeof path, "%s/configs/%s", source_dir(), cfg_name);
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  masa_model_cfg mc;
  int rc = config_load_file(&cfg, path);
  if (rc == MASA_OK) rc = masa_model_cfg_from_config(&cfg, &mc);
  char wdir[] = "/tmp/masa_bench_track_w_XXXXXX", wpath[64];
  if (rc == MASA_OK && !mkdtemp(wdir)) rc = masa_error("bench track: cannot create a temporary folder");
  snprintf(wpath, sizeof wpath, "%s/weights.h5", wdir);
  if (rc == MASA_OK) {
    masa_model m;
    masa_model_build(&m, &mc);
    masa_model_init(&m, (uint64_t)a->seed);
    rc = h5_save_params(wpath, &m.params);
    masa_model_free(&m);
  }
  embedder emb = {0};
  if (rc == MASA_OK) rc = embedder_masa_create(&cfg, wpath, NULL, &emb);
  remove(wpath);
  rmdir(wdir);
  int64_t scale[2] = {0, 0};
  if (rc == MASA_OK && config_int_list(&cfg, "model.test_scale", scale, 2) != 2)
    rc = masa_error("%s: model.test_scale must have two values", path);
  config_free(&cfg);
  if (rc != MASA_OK) {
    embedder_free(&emb);
    return MASA_ERR;
  }
  int W = (int)scale[0], H = (int)scale[1], n = (int)a->boxes;
  image_u8 im = image_alloc(H, W);
  for (int64_t i = 0; i < (int64_t)W * H * 3; i++) im.px[i] = (uint8_t)rng_below((uint64_t)a->seed, 22, (uint64_t)i, 256);
  tracker_opts to;
  tracker_default_opts(TRACKER_TAO, &to);
  to.dim = emb.dim;
  tracker *tr = tracker_create(&to);
  float *boxes = mallocCheck((size_t)n * 4 * sizeof(float)), *scores = mallocCheck((size_t)n * sizeof(float));
  float *embeds = mallocCheck((size_t)n * (size_t)emb.dim * sizeof(float));
  int64_t *ids = mallocCheck((size_t)n * sizeof(int64_t));
  log_info("bench track: %s, %dx%d frames, %d boxes, %ld timed frames after 1 warm-up", cfg_name, W, H, n, frames);
  double t0 = 0;
  for (long t = 0; t <= frames && rc == MASA_OK; t++) {
    if (t == 1) t0 = time_now();  // frame 0 warms the arena and the caches
    scene_boxes(n, (int)t, W, H, (uint64_t)a->seed, boxes, scores);
    rc = emb.embed(&emb, &im, n, boxes, embeds);
    if (rc == MASA_OK) rc = tracker_step(tr, t, n, boxes, scores, NULL, embeds, ids);
  }
  snprintf(row->name, sizeof row->name, "%s %dx%d + TAO", cfg_name, W, H);
  row->frames = frames;
  row->ms_per_frame = 1e3 * (time_now() - t0) / (double)frames;
  free(boxes), free(scores), free(embeds), free(ids);
  tracker_free(tr);
  image_free(&im);
  embedder_free(&emb);
  return rc;
}

// The tracker alone: N drifting boxes, each object's 256-d embedding = a fixed random vector plus
// 10% noise per frame (generated outside the timed span).
static int time_tracker(tracker_kind kind, const track_bench_args *a, speed_row *row) {
  const int dim = 256, n = (int)a->boxes;
  tracker_opts to;
  tracker_default_opts(kind, &to);
  to.dim = dim;
  tracker *tr = tracker_create(&to);
  float *base = mallocCheck((size_t)n * dim * sizeof(float)), *embeds = mallocCheck((size_t)n * dim * sizeof(float));
  float *boxes = mallocCheck((size_t)n * 4 * sizeof(float)), *scores = mallocCheck((size_t)n * sizeof(float));
  int64_t *ids = mallocCheck((size_t)n * sizeof(int64_t));
  rng_fill_normal(base, (int64_t)n * dim, 0.0f, 1.0f / 16.0f, (uint64_t)a->seed, 23);  // |v| ~ 1
  double total = 0;
  int rc = MASA_OK;
  for (long t = 0; t < a->tracker_frames && rc == MASA_OK; t++) {
    scene_boxes(n, (int)t, 1920, 1080, (uint64_t)a->seed, boxes, scores);
    for (int64_t i = 0; i < (int64_t)n * dim; i++)
      embeds[i] = base[i] + 0.1f / 16.0f * rng_normal((uint64_t)a->seed, 24, (uint64_t)(t * n * dim + i));
    double t0 = time_now();
    rc = tracker_step(tr, t, n, boxes, scores, NULL, embeds, ids);
    total += time_now() - t0;
  }
  snprintf(row->name, sizeof row->name, "%s tracker only (%d-d)", kind == TRACKER_TAO ? "TAO" : "BDD", dim);
  row->frames = a->tracker_frames;
  row->ms_per_frame = 1e3 * total / (double)a->tracker_frames;
  free(base), free(embeds), free(boxes), free(scores), free(ids);
  tracker_free(tr);
  return rc;
}

static int bench_tracking(const track_bench_args *a) {
  speed_row rows[4];
  int nrows = 0;
  if (time_model("demo.cfg", a, a->demo_frames, &rows[nrows]) != MASA_OK) return MASA_ERR;
  nrows++;
  if (a->r50_frames > 0) {
    if (time_model("masa_r50.cfg", a, a->r50_frames, &rows[nrows]) != MASA_OK) return MASA_ERR;
    nrows++;
  }
  if (time_tracker(TRACKER_TAO, a, &rows[nrows++]) != MASA_OK) return MASA_ERR;
  if (time_tracker(TRACKER_BDD, a, &rows[nrows++]) != MASA_OK) return MASA_ERR;
  printf("\ntracking speed, %ld boxes a frame, %d threads (model rows include embedding)\n", a->boxes,
         omp_get_max_threads());
  printf("%-34s %8s %12s %10s\n", "row", "frames", "ms/frame", "frames/s");
  for (int i = 0; i < nrows; i++)
    printf("%-34s %8ld %12.3f %10.2f\n", rows[i].name, rows[i].frames, rows[i].ms_per_frame,
           1e3 / rows[i].ms_per_frame);
  if (a->r50_frames == 0) printf("(MASA-R50 skipped: --r50-frames 0)\n");
  fflush(stdout);  // the table before the evaluation part's log lines
  return MASA_OK;
}

// ---------------------------------------------------------------- (2) evaluation speed

static float reflect(float v, float hi) {  // folds v into [0, hi]
  float p = fmodf(fabsf(v), 2 * hi);
  return p > hi ? 2 * hi - p : p;
}

typedef struct {
  int64_t gt_rows, res_rows;
} gen_counts;

// One sequence: 10-20 objects with a lifespan, moving linearly and bouncing off the borders of a
// 1920x1080 frame. gt: 90% pedestrians (class 1), 5% static persons (class 7, a MOT17 distractor),
// 5% rows with flag 0 (ignored). Results: each object is detected with p 0.9 (box noise 3% of
// its size); its tracker id changes with p 0.004 a frame (an id switch); 0-2 false positives a
// frame with fresh ids.
static int write_sequence(const char *dir, const char *seq, long frames, uint64_t seed, uint64_t s,
                          gen_counts *c) {
  char path[1400];
  snprintf(path, sizeof path, "%s/gt/%s/gt", dir, seq);
  if (make_dirs(path) != MASA_OK) return MASA_ERR;
  snprintf(path, sizeof path, "%s/gt/%s/seqinfo.ini", dir, seq);
  FILE *f = fopen(path, "w");
  if (!f) return masa_error("cannot write %s", path);
  fprintf(f, "[Sequence]\nname=%s\nimDir=img1\nframeRate=30\nseqLength=%ld\nimWidth=1920\nimHeight=1080\nimExt=.jpg\n",
          seq, frames);
  fclose(f);
  snprintf(path, sizeof path, "%s/gt/%s/gt/gt.txt", dir, seq);
  FILE *g = fopen(path, "w");
  snprintf(path, sizeof path, "%s/res/masa/%s.txt", dir, seq);
  FILE *r = fopen(path, "w");
  if (!g || !r) {
    if (g) fclose(g);
    if (r) fclose(r);
    return masa_error("cannot write the files of %s in %s", seq, dir);
  }
  uint64_t st = 100 + s;  // this sequence's stream
  uint64_t k = 0;
#define U() rng_uniform(seed, st, k++)
  int n = 10 + (int)rng_below(seed, st, k++, 11);
  float obj[20][10];  // start, end, x, y, vx, vy, w, h, class, flag
  int64_t tid[20], next_id = 1;
  for (int i = 0; i < n; i++) {
    float *o = obj[i];
    int late = U() < 0.3f;
    o[0] = late ? 1 + (float)(int)(U() * frames / 2) : 1;
    o[1] = fminf((float)frames, o[0] + frames / 2 + (float)(int)(U() * frames / 2));
    o[6] = 30 + 120 * U(), o[7] = o[6] * (2 + U());
    o[2] = U() * (1920 - o[6]), o[3] = U() * (1080 - o[7]);
    o[4] = 6 * (U() - 0.5f), o[5] = 2 * (U() - 0.5f);
    float cls = U();
    o[8] = cls < 0.05f ? 7 : 1, o[9] = cls > 0.95f ? 0 : 1;
    tid[i] = next_id++;
  }
  for (long t = 1; t <= frames; t++) {
    for (int i = 0; i < n; i++) {
      float *o = obj[i];
      if (t < o[0] || t > o[1]) continue;
      float x = reflect(o[2] + o[4] * (t - o[0]), 1920 - o[6]), y = reflect(o[3] + o[5] * (t - o[0]), 1080 - o[7]);
      fprintf(g, "%ld,%d,%.2f,%.2f,%.2f,%.2f,%d,%d,%.2f\n", t, i + 1, x, y, o[6], o[7], (int)o[9], (int)o[8],
              0.3f + 0.7f * U());
      c->gt_rows++;
      if (U() < 0.004f) tid[i] = next_id++;
      if (U() >= 0.9f) continue;
      float nx = 0.03f * o[6] * rng_normal(seed, st, k++), ny = 0.03f * o[7] * rng_normal(seed, st, k++);
      float nw = 0.03f * o[6] * rng_normal(seed, st, k++), nh = 0.03f * o[7] * rng_normal(seed, st, k++);
      fprintf(r, "%ld,%lld,%.2f,%.2f,%.2f,%.2f,%.3f,-1,-1,-1\n", t, (long long)tid[i], x + nx, y + ny, o[6] + nw,
              o[7] + nh, 0.5f + 0.5f * U());
      c->res_rows++;
    }
    int fp = (int)rng_below(seed, st, k++, 3);
    for (int j = 0; j < fp; j++) {
      float w = 30 + 120 * U(), h = w * (2 + U());
      float x = U() * (1920 - w), y = U() * (1080 - h), conf = 0.3f + 0.5f * U();
      fprintf(r, "%ld,%lld,%.2f,%.2f,%.2f,%.2f,%.3f,-1,-1,-1\n", t, (long long)next_id++, x, y, w, h, conf);
      c->res_rows++;
    }
  }
#undef U
  int bad = ferror(g) || ferror(r);
  bad |= fclose(g) != 0;
  bad |= fclose(r) != 0;
  return bad ? masa_error("writing the files of %s in %s failed", seq, dir) : MASA_OK;
}

typedef struct {
  double seconds, hota, mota, idf1;
  int ok;
} eval_side;

static void run_trackeval(const track_bench_args *a, const char *dir, eval_side *te) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 %s %s/tools/bench_eval_trackeval.py "
           "--gt '%s/gt' --seqmap '%s/seqmap.txt' --trackers '%s/res' --name masa",
           a->python, source_dir(), dir, dir, dir);
  log_info("bench track: running TrackEval: %s", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) {
    log_warn("cannot start %s", cmd);
    return;
  }
  char out[4096];
  size_t len = 0, got;
  while ((got = fread(out + len, 1, sizeof out - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  int status = pclose(p);
  cJSON *j = status == 0 ? cJSON_Parse(out) : NULL;
  if (!j) {
    log_warn("TrackEval side failed (status %d); showing our numbers only", status);
    return;
  }
  static const char *const keys[4] = {"seconds", "HOTA", "MOTA", "IDF1"};
  double *dst[4] = {&te->seconds, &te->hota, &te->mota, &te->idf1};
  te->ok = 1;
  for (int i = 0; i < 4; i++) {
    cJSON *v = cJSON_GetObjectItem(j, keys[i]);
    if (cJSON_IsNumber(v)) *dst[i] = v->valuedouble;
    else te->ok = 0;
  }
  if (!te->ok) log_warn("TrackEval side printed incomplete JSON; showing our numbers only");
  cJSON_Delete(j);
}

// Returns 0, or 1 when the two sides disagree.
static int bench_eval(const track_bench_args *a) {
  char dir[] = "/tmp/masa_bench_track_XXXXXX";
  if (!mkdtemp(dir)) return masa_error("bench track: cannot create a temporary folder");
  char path[1200];
  snprintf(path, sizeof path, "%s/res/masa", dir);
  int rc = make_dirs(path);
  snprintf(path, sizeof path, "%s/seqmap.txt", dir);
  FILE *sm = rc == MASA_OK ? fopen(path, "w") : NULL;
  if (rc == MASA_OK && !sm) rc = masa_error("cannot write %s", path);
  if (sm) fprintf(sm, "name\n");
  gen_counts cnt = {0, 0};
  double tg = time_now();
  for (long s = 0; s < a->eval_seqs && rc == MASA_OK; s++) {
    char seq[32];
    snprintf(seq, sizeof seq, "SYN-%05ld", s);
    fprintf(sm, "%s\n", seq);
    rc = write_sequence(dir, seq, a->eval_frames, (uint64_t)a->seed, (uint64_t)s, &cnt);
  }
  if (sm && fclose(sm) != 0 && rc == MASA_OK) rc = masa_error("cannot write %s", path);
  eval_side ours = {0}, te = {0};
  if (rc == MASA_OK) {
    log_info("bench track: wrote %ld sequences x %ld frames (%lld gt rows, %lld result rows) to %s in %.1f s",
             a->eval_seqs, a->eval_frames, (long long)cnt.gt_rows, (long long)cnt.res_rows, dir, time_now() - tg);
    char gt[1200], res[1200];
    snprintf(gt, sizeof gt, "%s/gt", dir);
    snprintf(res, sizeof res, "%s/res/masa", dir);
    eval_options opt = {.benchmark = BENCH_MOT, .gt = gt, .results = res,
                        .metrics = EVAL_CLEAR | EVAL_IDENTITY | EVAL_HOTA, .clear_conv = CLEAR_TRACKEVAL,
                        .mot = MOT_VARIANT_17, .track_class_vote = 1};
    eval_report rep;
    double t0 = time_now();
    rc = evaluate_benchmark(&opt, &rep);
    ours.seconds = time_now() - t0;
    if (rc == MASA_OK) {
      double h = 0;
      for (int i = 0; i < HOTA_NUM_ALPHA; i++) h += rep.combined.hota.hota[i];
      ours.hota = h / HOTA_NUM_ALPHA, ours.mota = rep.combined.clear.mota, ours.idf1 = rep.combined.identity.idf1;
      ours.ok = 1;
      eval_report_free(&rep);
    }
  }
  if (rc == MASA_OK && !a->no_python) run_trackeval(a, dir, &te);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);  // our own mkdtemp folder
  if (system(cmd) != 0) log_warn("bench track: could not remove %s", dir);
  if (rc != MASA_OK) return MASA_ERR;

  printf("\nmasa eval vs TrackEval MotChallenge2DBox (MOT17 rules; CLEAR + Identity + HOTA; 1 core each)\n");
  printf("input: %ld sequences x %ld frames, %lld gt boxes, %lld result boxes (generated)\n", a->eval_seqs,
         a->eval_frames, (long long)cnt.gt_rows, (long long)cnt.res_rows);
  printf("%-12s %10s %12s %12s %12s\n", "", "seconds", "HOTA", "MOTA", "IDF1");
  printf("%-12s %10.3f %12.9f %12.9f %12.9f\n", "masa eval", ours.seconds, ours.hota, ours.mota, ours.idf1);
  if (!te.ok) {
    printf("%-12s %10s %12s %12s %12s\n", "TrackEval", "-", "-", "-", "-");
    return 0;
  }
  printf("%-12s %10.3f %12.9f %12.9f %12.9f\n", "TrackEval", te.seconds, te.hota, te.mota, te.idf1);
  double diff = fmax(fabs(ours.hota - te.hota), fmax(fabs(ours.mota - te.mota), fabs(ours.idf1 - te.idf1)));
  int agree = diff <= 1e-9;  // the metrics are meant to be bit-identical; allow summation order
  printf("speed-up %.1fx (TrackEval seconds / masa eval seconds); metrics %s (max |diff| %.3g)\n",
         te.seconds / fmax(ours.seconds, 1e-9), agree ? "agree" : "DIFFER", diff);
  if (!agree) log_error("bench track: masa eval and TrackEval disagree (max |diff| %.3g)", diff);
  return agree ? 0 : 1;
}

int bench_track(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      puts(bench_track_usage);
      return 0;
    }
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0;
  char venv[1200];
  snprintf(venv, sizeof venv, "%s/.venv/bin/python", source_dir());
  track_bench_args a = {50, 20, 3, 2000, 100, 500, 0, 1, 1, 0, access(venv, X_OK) == 0 ? venv : "/usr/bin/python3"};
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK ||
      parse_args(nrest, rest, &a) != MASA_OK) {
    log_error("%s\n%s", argc > 256 ? "too many arguments" : masa_errmsg(), bench_track_usage);
    config_free(&cfg);
    return 1;
  }
  config_free(&cfg);
  int rc = 0;
  if (a.do_track && bench_tracking(&a) != MASA_OK) {
    log_error("%s", masa_errmsg());
    rc = 1;
  }
  if (rc == 0 && a.do_eval) {
    int e = bench_eval(&a);
    if (e == MASA_ERR) log_error("%s", masa_errmsg());
    rc = e != 0;
  }
  return rc;
}
