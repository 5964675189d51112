// `masa bench embed`: what `masa embed` costs on this CPU for a recipe's model (default MASA-R50,
// random init): wall time of preprocessing, backbone + adapter and the track head on a
// SIZE x SIZE image with N boxes, process CPU time, and memory (activation arena peak, resident
// memory with the model built, process max RSS), beside the PyTorch reference model
// (tools/bench_embed_torch.py on tests/reference/masa_ref.py: same recipe, same boxes, same
// thread count) run in the same invocation; then the parameter count of every top-level module
// on both sides and the released checkpoint sizes of masa-spec §9.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <omp.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "model/masa_model.h"

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

static const char *bench_embed_usage =
    "usage: masa bench embed [--config FILE] [--set model.KEY=VALUE]... [--size N] [--boxes N]\n"
    "                        [--repeats N] [--warmup N] [--seed S] [--python PY | --no-python]\n"
    "                        [--threads N]\n"
    "  Times masa embed's forward for the recipe's model (default: MASA-R50 as configs/masa_r50.cfg,\n"
    "  random init) on a SIZE x SIZE image (default 1024) with N boxes (default 100), median of\n"
    "  --repeats (default 3) after --warmup (default 1), beside the PyTorch reference model.";

#define NGROUPS 7
static const char *const groups[NGROUPS] = {"backbone", "detector.backbone", "masa_adapter.0",
                                            "masa_adapter.1", "rpn_head", "roi_head", "track_head"};

typedef struct {
  double pre_ms, feat_ms, emb_ms, total_ms, cpu_s;
  double rss_model_mb, rss_peak_mb, arena_mb;
  int64_t params[NGROUPS];
  int ok;
} bench_side;

typedef struct {
  long size, boxes, repeats, warmup, seed;
  const char *python;
  int no_python;
} embed_args;

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double rss_now_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return (double)res * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

static double rss_peak_mb(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_maxrss * 1024.0 / 1e6;  // Linux: kilobytes
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int parse_args(int nrest, char **rest, embed_args *a) {
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i], *v = i + 1 < nrest ? rest[i + 1] : NULL;
    if (!strcmp(k, "--no-python")) {
      a->no_python = 1;
      continue;
    }
    if (!v) return masa_error("bench embed: '%s' needs a value or is unknown", k);
    i++;
    if (!strcmp(k, "--python")) {
      a->python = v;
      continue;
    }
    char *end;
    long n = strtol(v, &end, 10);
    long *dst = !strcmp(k, "--size")      ? &a->size
                : !strcmp(k, "--boxes")   ? &a->boxes
                : !strcmp(k, "--repeats") ? &a->repeats
                : !strcmp(k, "--warmup")  ? &a->warmup
                : !strcmp(k, "--seed")    ? &a->seed
                                          : NULL;
    if (!dst) return masa_error("bench embed: unknown argument '%s'", k);
    int min = dst == &a->repeats || dst == &a->size ? 1 : 0;
    if (!*v || *end || n < min || n > 100000)
      return masa_error("bench embed: %s expects an integer >= %d, got '%s'", k, min, v);
    *dst = n;
  }
  return MASA_OK;
}

// Boxes of 16..512 px (capped by the image) anywhere in the image, x1 y1 x2 y2.
static float *make_boxes(long n, long size, uint64_t seed) {
  float *b = mallocCheck((size_t)(n > 0 ? n : 1) * 4 * sizeof(float));
  float hi = size < 512 ? (float)size : 512.0f, lo = hi < 16 ? hi : 16.0f;
  for (long i = 0; i < n; i++) {
    float bw = lo + (hi - lo) * rng_uniform(seed, 11, (uint64_t)(4 * i));
    float bh = lo + (hi - lo) * rng_uniform(seed, 11, (uint64_t)(4 * i + 1));
    float x1 = ((float)size - bw) * rng_uniform(seed, 11, (uint64_t)(4 * i + 2));
    float y1 = ((float)size - bh) * rng_uniform(seed, 11, (uint64_t)(4 * i + 3));
    b[4 * i] = x1, b[4 * i + 1] = y1, b[4 * i + 2] = x1 + bw, b[4 * i + 3] = y1 + bh;
  }
  return b;
}

static void count_groups(const param_table *t, int64_t out[NGROUPS]) {
  for (int g = 0; g < NGROUPS; g++) {
    size_t len = strlen(groups[g]);
    out[g] = 0;
    for (int i = 0; i < t->count; i++)
      if (!strncmp(t->entries[i].name, groups[g], len) && t->entries[i].name[len] == '.')
        out[g] += t->entries[i].numel;
  }
}

static void run_ours(masa_model *m, const embed_args *a, const float *boxes, bench_side *s) {
  image_u8 im = image_alloc((int)a->size, (int)a->size);
  int64_t npx = (int64_t)a->size * a->size * 3;
  for (int64_t i = 0; i < npx; i++) im.px[i] = (uint8_t)rng_below((uint64_t)a->seed, 12, (uint64_t)i, 256);
  int64_t nb = a->boxes, E = m->cfg.track.embed_channels;
  float *rois = mallocCheck((size_t)(nb > 0 ? nb : 1) * 5 * sizeof(float));
  float *emb = mallocCheck((size_t)(nb > 0 ? nb : 1) * (size_t)E * sizeof(float));
  arena ar;
  arena_init(&ar, 0);
  model_ctx ctx = {&m->params, &ar, 0, NULL, NULL, NULL};
  int n = (int)(a->warmup + a->repeats);
  double *t = mallocCheck((size_t)a->repeats * 5 * sizeof(double));
  s->rss_model_mb = rss_now_mb();
  for (int it = 0; it < n; it++) {
    double c0 = cpu_now(), t0 = time_now();
    tensor x;
    preprocess_meta meta;
    preprocess_images(&im, 1, &m->cfg.pre, &x, &meta);
    double t1 = time_now();
    masa_feat_acts fa;
    masa_features_forward(m, &ctx, &x, &fa);
    double t2 = time_now();
    for (int64_t i = 0; i < nb; i++) {
      rois[5 * i] = 0.0f;
      memcpy(rois + 5 * i + 1, boxes + 4 * i, 4 * sizeof(float));
    }
    preprocess_scale_boxes(rois + 1, nb, 5, &meta);  // x1..y2 follow the batch index
    masa_embed_rois(m, &ctx, fa.feats, nb, rois, emb);
    double t3 = time_now();
    tensor_free(&x);
    arena_reset(&ar);
    int r = it - (int)a->warmup;
    if (r >= 0) {
      double *row = t + 5 * r;
      row[0] = 1e3 * (t1 - t0), row[1] = 1e3 * (t2 - t1), row[2] = 1e3 * (t3 - t2);
      row[3] = 1e3 * (t3 - t0), row[4] = cpu_now() - c0;
    }
  }
  double col[5][64];
  int R = a->repeats < 64 ? (int)a->repeats : 64;
  for (int r = 0; r < R; r++)
    for (int j = 0; j < 5; j++) col[j][r] = t[5 * r + j];
  s->pre_ms = median(col[0], R), s->feat_ms = median(col[1], R), s->emb_ms = median(col[2], R);
  s->total_ms = median(col[3], R), s->cpu_s = median(col[4], R);
  s->arena_mb = (double)ar.peak / 1e6;
  s->rss_peak_mb = rss_peak_mb();
  count_groups(&m->params, s->params);
  s->ok = 1;
  free(t);
  free(rois);
  free(emb);
  arena_free(&ar);
  image_free(&im);
}

static void run_torch(const config *cfg, const embed_args *a, const float *boxes, int threads,
                      bench_side *s) {
  char dir[] = "/tmp/masa_bench_embed_XXXXXX";
  if (!mkdtemp(dir)) {
    log_warn("cannot create a temporary folder; showing our numbers only");
    return;
  }
  char cfg_path[64], box_path[64];
  snprintf(cfg_path, sizeof cfg_path, "%s/model.cfg", dir);
  snprintf(box_path, sizeof box_path, "%s/boxes.txt", dir);
  char *text = config_dump(cfg);
  FILE *f = fopen(cfg_path, "w"), *g = fopen(box_path, "w");
  if (f) fputs(text, f);
  for (long i = 0; g && i < a->boxes; i++)
    fprintf(g, "%.9g %.9g %.9g %.9g\n", boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2],
            boxes[4 * i + 3]);
  int written = f && g;
  if (f) fclose(f);
  if (g) fclose(g);
  free(text);
  const char *src = getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "OMP_NUM_THREADS=%d %s %s/tools/bench_embed_torch.py --config %s --size %ld --boxes %s "
           "--repeats %ld --warmup %ld --threads %d --seed %ld",
           threads, a->python, src, cfg_path, a->size, box_path, a->repeats, a->warmup, threads,
           a->seed);
  cJSON *j = NULL;
  if (written) {
    log_info("running the PyTorch side: %s", cmd);
    FILE *p = popen(cmd, "r");
    if (p) {
      size_t cap = 1 << 16, len = 0, got;
      char *out = mallocCheck(cap);
      while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
      out[len] = 0;
      int status = pclose(p);
      if (status == 0) j = cJSON_Parse(out);
      else log_warn("PyTorch benchmark failed (status %d); showing our numbers only", status);
      free(out);
    }
  }
  remove(cfg_path);
  remove(box_path);
  rmdir(dir);
  if (!j) return;
  static const char *const keys[] = {"pre_ms", "feat_ms", "emb_ms", "total_ms", "cpu_s",
                                     "rss_model_mb", "rss_peak_mb"};
  double *dst[] = {&s->pre_ms, &s->feat_ms, &s->emb_ms, &s->total_ms, &s->cpu_s,
                   &s->rss_model_mb, &s->rss_peak_mb};
  s->ok = 1;
  for (int k = 0; k < 7; k++) {
    cJSON *v = cJSON_GetObjectItem(j, keys[k]);
    if (cJSON_IsNumber(v)) *dst[k] = v->valuedouble;
    else s->ok = 0;
  }
  cJSON *pr = cJSON_GetObjectItem(j, "params");
  for (int gi = 0; gi < NGROUPS; gi++) {
    cJSON *v = pr ? cJSON_GetObjectItem(pr, groups[gi]) : NULL;
    s->params[gi] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
  }
  if (!s->ok) log_warn("PyTorch benchmark printed incomplete JSON; showing our numbers only");
  cJSON_Delete(j);
}

static void print_time_row(const char *name, double ours, double torch, int have) {
  if (have && ours > 0)
    printf("%-22s %12.1f %12.1f %9.2fx\n", name, ours, torch, torch / ours);
  else
    printf("%-22s %12.1f %12s %10s\n", name, ours, "-", "-");
}

// The released checkpoints of masa-spec §9 that correspond to a recipe.
static void print_checkpoints(const masa_model *m, double ours_mb, double encoder_mb) {
  const masa_model_cfg *c = &m->cfg;
  printf("\nreleased checkpoints (masa-spec §9) vs ours (float32, BN statistics included):\n");
  int official = c->channels == 256 && c->track.fc_channels == 1024 &&
                 (c->backbone == BACKBONE_RESNET
                      ? c->resnet.depth == 50 && c->resnet.base_channels == 64
                      : (c->vit.embed == 768 && c->vit.depth == 12) ||
                            (c->vit.embed == 1280 && c->vit.depth == 32));
  if (!official) {
    printf("  (no released checkpoint has this model's sizes; ours %.1f MB)\n", ours_mb);
  } else if (c->backbone == BACKBONE_RESNET) {
    printf("  masa_r50.pth            528 MB  vs ours %.1f MB (x%.2f; the spec reads the file as\n"
           "                                  ~2x the parameters: optimizer state or mmengine objects)\n",
           ours_mb, 528.0 / ours_mb);
  } else if (c->vit.embed == 768) {
    printf("  sam_vitb_masa.pth       559 MB  vs ours %.1f MB (the file adds SAM's neck, prompt\n"
           "                                  encoder and mask decoder, which MASA does not run)\n",
           ours_mb);
    printf("  sam_vit_b_01ec64 (mmdet) 375 MB vs our SAM ViT-B encoder %.1f MB (same extras)\n",
           encoder_mb);
  } else {
    printf("  sam_vit_h_4b8939 (mmdet) 2.56 GB vs our SAM ViT-H encoder %.1f MB\n", encoder_mb);
  }
}

int bench_embed(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = 1;
  char venv[1024];
  snprintf(venv, sizeof venv, "%s/.venv/bin/python",
           getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR);
  embed_args a = {1024, 100, 3, 1, 0, access(venv, X_OK) == 0 ? venv : "/usr/bin/python3", 0};
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK ||
      parse_args(nrest, rest, &a) != MASA_OK) {
    log_error("%s\n%s", argc > 256 ? "too many arguments" : masa_errmsg(), bench_embed_usage);
    config_free(&cfg);
    return 1;
  }
  masa_model_cfg mc;
  if (masa_model_cfg_from_config(&cfg, &mc) != MASA_OK) {
    log_error("%s", masa_errmsg());
    config_free(&cfg);
    return 1;
  }
  masa_model m;
  masa_model_build(&m, &mc);
  masa_model_init(&m, (uint64_t)a.seed);
  int threads = omp_get_max_threads();
  const char *name = mc.backbone == BACKBONE_RESNET ? "ResNet" : "SAM ViT";
  log_info("bench embed: %s backbone, %lldx%lld image, %ld boxes, %d threads, median of %ld after "
           "%ld warm-up, seed %ld",
           name, (long long)a.size, (long long)a.size, a.boxes, threads, a.repeats, a.warmup, a.seed);
  float *boxes = make_boxes(a.boxes, a.size, (uint64_t)a.seed);
  bench_side ours = {0}, torch = {0};
  run_ours(&m, &a, boxes, &ours);
  if (!a.no_python) run_torch(&cfg, &a, boxes, threads, &torch);
  int have = torch.ok;

  int nh, nw, d = mc.pre.pad_divisor;
  rescale_keep_ratio((int)a.size, (int)a.size, mc.pre.scale_long, mc.pre.scale_short, &nh, &nw);
  printf("\nmasa embed forward, %s backbone, %ldx%ld image -> network input %dx%d, %ld boxes, "
         "%d threads, median of %ld\n",
         name, a.size, a.size, (nw + d - 1) / d * d, (nh + d - 1) / d * d, a.boxes, threads,
         a.repeats);
  printf("%-22s %12s %12s %10s\n", "time (wall ms)", "ours", "PyTorch", "speedup");
  print_time_row("preprocess", ours.pre_ms, torch.pre_ms, have);
  print_time_row("backbone + adapter", ours.feat_ms, torch.feat_ms, have);
  print_time_row("RoIAlign + track head", ours.emb_ms, torch.emb_ms, have);
  print_time_row("total", ours.total_ms, torch.total_ms, have);
  print_time_row("CPU s (all threads)", ours.cpu_s, torch.cpu_s, have);
  printf("%-22s %12s %12s\n", "memory (MB)", "ours", "PyTorch");
  printf("%-22s %12.1f %12s\n", "activation arena peak", ours.arena_mb, "-");
  if (have) {
    printf("%-22s %12.1f %12.1f\n", "RSS, model built", ours.rss_model_mb, torch.rss_model_mb);
    printf("%-22s %12.1f %12.1f\n", "max RSS (getrusage)", ours.rss_peak_mb, torch.rss_peak_mb);
    printf("%-22s %12.1f %12.1f\n", "max RSS - model RSS", ours.rss_peak_mb - ours.rss_model_mb,
           torch.rss_peak_mb - torch.rss_model_mb);
  } else {
    printf("%-22s %12.1f\n%-22s %12.1f\n", "RSS, model built", ours.rss_model_mb,
           "max RSS (getrusage)", ours.rss_peak_mb);
  }

  printf("\n%-22s %14s %14s %10s\n", "parameters", "ours", "PyTorch ref", "MB fp32");
  int64_t total = 0, total_t = 0, encoder = 0;
  int mismatch = 0;
  for (int gi = 0; gi < NGROUPS; gi++) {
    if (!ours.params[gi] && !torch.params[gi]) continue;
    total += ours.params[gi], total_t += torch.params[gi];
    if (mc.backbone == BACKBONE_VIT_SAM && gi == 1) encoder = ours.params[gi];
    int same = ours.params[gi] == torch.params[gi];
    mismatch |= have && !same;
    if (have)
      printf("%-22s %14lld %14lld %10.1f%s\n", groups[gi], (long long)ours.params[gi],
             (long long)torch.params[gi], 4e-6 * (double)ours.params[gi], same ? "" : "  DIFFERENT");
    else
      printf("%-22s %14lld %14s %10.1f\n", groups[gi], (long long)ours.params[gi], "-",
             4e-6 * (double)ours.params[gi]);
  }
  if (have)
    printf("%-22s %14lld %14lld %10.1f\n", "total", (long long)total, (long long)total_t,
           4e-6 * (double)total);
  else
    printf("%-22s %14lld %14s %10.1f\n", "total", (long long)total, "-", 4e-6 * (double)total);
  print_checkpoints(&m, 4e-6 * (double)total, 4e-6 * (double)encoder);
  if (mismatch) log_error("parameter counts differ between masa and the PyTorch reference");
  rc = mismatch ? 1 : 0;
  free(boxes);
  masa_model_free(&m);
  config_free(&cfg);
  return rc;
}
