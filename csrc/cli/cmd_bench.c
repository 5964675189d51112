// `masa bench ops`: times conv2d, DCNv2 and RoIAlign forward and backward at MASA adapter shapes
// (256 channels, maps from bench.sizes, bench.rois RoIs), then runs the same ops in PyTorch on
// this machine (tools/bench_ops_torch.py, same thread count) and prints both with their ratio.
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "ops/ops.h"

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

const cfg_key bench_schema[] = {
    {"bench.channels", CFG_INT, "256", "channels of every benchmarked map (MASA: 256)"},
    {"bench.batch", CFG_INT, "2", "images per batch"},
    {"bench.sizes", CFG_INT_LIST, "128, 64", "square map sizes to benchmark"},
    {"bench.rois", CFG_INT, "512", "RoIs for RoIAlign (MASA samples 512 per image)"},
    {"bench.image_size", CFG_INT, "1024", "network input size; RoIs lie in it, stride = image/map"},
    {"bench.repeats", CFG_INT, "5", "timed repetitions (the median is reported)"},
    {"bench.warmup", CFG_INT, "1", "untimed repetitions first"},
    {"bench.torch", CFG_BOOL, "true", "also time PyTorch (needs /usr/bin/python3 with torch)"},
    {"bench.python", CFG_STRING, "/usr/bin/python3", "interpreter for the PyTorch side"},
    {"bench.seed", CFG_INT, "1234", "seed for the random inputs"},
    {NULL, 0, NULL, NULL}};

typedef struct {
  char name[64];
  double fwd_ms, bwd_ms;
  double torch_fwd_ms, torch_bwd_ms;
} bench_row;

typedef void (*bench_fn)(void *ctx);

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double time_median_ms(bench_fn fn, void *ctx, int warmup, int repeats) {
  for (int i = 0; i < warmup; i++) fn(ctx);
  double t[64];
  if (repeats > 64) repeats = 64;
  for (int i = 0; i < repeats; i++) {
    double t0 = time_now();
    fn(ctx);
    t[i] = 1e3 * (time_now() - t0);
  }
  qsort(t, (size_t)repeats, sizeof t[0], cmp_double);
  return t[repeats / 2];
}

static float *rand_buf(int64_t n, float lo, float hi, uint64_t seed, uint64_t stream) {
  float *p = mallocCheck((size_t)n * sizeof(float));
  rng_fill_uniform(p, n, lo, hi, seed, stream);
  return p;
}

// ---- conv2d and DCN share one context: x, weight, output and gradients
typedef struct {
  conv2d_desc cd;
  dcn_desc dd;
  float *x, *w, *y, *dy, *dx, *dw, *off, *mask, *doff, *dmask;
} conv_ctx;

static void conv_fwd(void *p) {
  conv_ctx *c = p;
  conv2d_forward_cpu(&c->cd, c->x, c->w, NULL, c->y);
}
static void conv_bwd(void *p) {
  conv_ctx *c = p;
  conv2d_backward_cpu(&c->cd, c->x, c->w, c->dy, c->dx, c->dw, NULL);
}
static void dcn_fwd(void *p) {
  conv_ctx *c = p;
  dcn_forward_cpu(&c->dd, c->x, c->off, c->mask, c->w, NULL, c->y);
}
static void dcn_bwd(void *p) {
  conv_ctx *c = p;
  dcn_backward_cpu(&c->dd, c->x, c->off, c->mask, c->w, c->dy, c->dx, c->doff, c->dmask, c->dw, NULL);
}

typedef struct {
  int64_t n, c, h, w, k;
  float scale;
  float *x, *rois, *y, *dy, *dx;
} roi_ctx;

static void roi_fwd(void *p) {
  roi_ctx *r = p;
  roi_align_forward_cpu(r->n, r->c, r->h, r->w, r->x, r->k, r->rois, r->scale, 7, 7, 0, 1, r->y);
}
static void roi_bwd(void *p) {
  roi_ctx *r = p;
  roi_align_backward_cpu(r->n, r->c, r->h, r->w, r->k, r->rois, r->scale, 7, 7, 0, 1, r->dy, r->dx);
}

// Runs the PyTorch side; fills torch_* fields of rows matched by name. Returns 0 on success.
static int run_torch(const config *cfg, int threads, bench_row *rows, int nrows) {
  const char *dir = getenv("MASA_SOURCE_DIR");
  if (!dir) dir = MASA_SOURCE_DIR;
  int64_t sizes[CFG_MAX_LIST];
  int ns = config_int_list(cfg, "bench.sizes", sizes, CFG_MAX_LIST);
  char size_list[256] = "";
  for (int i = 0; i < ns; i++)
    snprintf(size_list + strlen(size_list), sizeof size_list - strlen(size_list), "%s%lld",
             i ? "," : "", (long long)sizes[i]);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "%s %s/tools/bench_ops_torch.py --channels %lld --batch %lld --sizes %s --rois %lld "
           "--image-size %lld --repeats %lld --warmup %lld --threads %d --seed %lld",
           config_str(cfg, "bench.python"), dir, (long long)config_int(cfg, "bench.channels"),
           (long long)config_int(cfg, "bench.batch"), size_list,
           (long long)config_int(cfg, "bench.rois"), (long long)config_int(cfg, "bench.image_size"),
           (long long)config_int(cfg, "bench.repeats"), (long long)config_int(cfg, "bench.warmup"),
           threads, (long long)config_int(cfg, "bench.seed"));
  log_info("running the PyTorch side: %s", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) {
    log_warn("cannot start %s", cmd);
    return -1;
  }
  size_t cap = 1 << 16, len = 0;
  char *out = mallocCheck(cap);
  size_t got;
  while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  int status = pclose(p);
  if (status != 0) {
    log_warn("PyTorch benchmark failed (status %d); showing our numbers only", status);
    free(out);
    return -1;
  }
  cJSON *j = cJSON_Parse(out);
  free(out);
  if (!j || !cJSON_IsArray(j)) {
    log_warn("PyTorch benchmark printed no JSON array");
    cJSON_Delete(j);
    return -1;
  }
  cJSON *it;
  cJSON_ArrayForEach(it, j) {
    cJSON *name = cJSON_GetObjectItem(it, "name"), *f = cJSON_GetObjectItem(it, "fwd_ms"),
          *b = cJSON_GetObjectItem(it, "bwd_ms");
    if (!cJSON_IsString(name) || !cJSON_IsNumber(f) || !cJSON_IsNumber(b)) continue;
    for (int i = 0; i < nrows; i++)
      if (!strcmp(rows[i].name, name->valuestring)) {
        rows[i].torch_fwd_ms = f->valuedouble;
        rows[i].torch_bwd_ms = b->valuedouble;
      }
  }
  cJSON_Delete(j);
  return 0;
}

static int bench_ops(const config *cfg) {
  int64_t C = config_int(cfg, "bench.channels"), B = config_int(cfg, "bench.batch");
  int64_t K = config_int(cfg, "bench.rois"), img = config_int(cfg, "bench.image_size");
  int warm = (int)config_int(cfg, "bench.warmup"), rep = (int)config_int(cfg, "bench.repeats");
  uint64_t seed = (uint64_t)config_int(cfg, "bench.seed");
  int64_t sizes[CFG_MAX_LIST];
  int ns = config_int_list(cfg, "bench.sizes", sizes, CFG_MAX_LIST);
  if (C < 1 || B < 1 || K < 0 || img < 1 || rep < 1 || warm < 0 || ns < 1) {
    log_error("bench: channels, batch, image_size, repeats must be >= 1, rois and warmup >= 0, "
              "and sizes non-empty");
    return 1;
  }
  int threads = omp_get_max_threads();
  log_info("bench ops: %lld channels, batch %lld, %lld RoIs, %d threads, seed %llu, median of %d",
           (long long)C, (long long)B, (long long)K, threads, (unsigned long long)seed, rep);
  bench_row rows[3 * CFG_MAX_LIST];
  int nrows = 0;
  for (int si = 0; si < ns; si++) {
    int64_t S = sizes[si];
    conv_ctx c;
    memset(&c, 0, sizeof c);
    c.cd = conv2d_make(B, C, S, S, C, 3, 1, 1, 1, 1);
    c.dd = dcn_make(B, C, S, S, C, 3, 1, 1, 1);
    int64_t nx = B * C * S * S, nw = C * C * 9, noff = B * 18 * S * S, nm = B * 9 * S * S;
    c.x = rand_buf(nx, -1, 1, seed, 1);
    c.w = rand_buf(nw, -0.02f, 0.02f, seed, 2);
    c.dy = rand_buf(nx, -1, 1, seed, 3);
    c.off = rand_buf(noff, -2, 2, seed, 4);
    c.mask = rand_buf(nm, 0, 1, seed, 5);
    c.y = callocCheck((size_t)nx, sizeof(float));
    c.dx = callocCheck((size_t)nx, sizeof(float));
    c.dw = callocCheck((size_t)nw, sizeof(float));
    c.doff = callocCheck((size_t)noff, sizeof(float));
    c.dmask = callocCheck((size_t)nm, sizeof(float));
    bench_row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "conv2d_3x3_%lld", (long long)S);
    r->fwd_ms = time_median_ms(conv_fwd, &c, warm, rep);
    r->bwd_ms = time_median_ms(conv_bwd, &c, warm, rep);
    r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "dcn_3x3_%lld", (long long)S);
    r->fwd_ms = time_median_ms(dcn_fwd, &c, warm, rep);
    r->bwd_ms = time_median_ms(dcn_bwd, &c, warm, rep);
    free(c.x), free(c.w), free(c.dy), free(c.off), free(c.mask), free(c.y), free(c.dx);
    free(c.dw), free(c.doff), free(c.dmask);

    roi_ctx q = {B, C, S, S, K, (float)S / (float)img, NULL, NULL, NULL, NULL, NULL};
    q.x = rand_buf(nx, -1, 1, seed, 6);
    q.rois = mallocCheck((size_t)(K > 0 ? K : 1) * 5 * sizeof(float));
    for (int64_t i = 0; i < K; i++) {  // boxes of 16..512 px anywhere in the image
      float bw = 16 + 496 * rng_uniform(seed, 7, (uint64_t)(4 * i));
      float bh = 16 + 496 * rng_uniform(seed, 7, (uint64_t)(4 * i + 1));
      float x1 = (float)(img - bw) * rng_uniform(seed, 7, (uint64_t)(4 * i + 2));
      float y1 = (float)(img - bh) * rng_uniform(seed, 7, (uint64_t)(4 * i + 3));
      float *roi = q.rois + 5 * i;
      roi[0] = (float)(i % B), roi[1] = x1, roi[2] = y1, roi[3] = x1 + bw, roi[4] = y1 + bh;
    }
    q.y = callocCheck((size_t)(K * C * 49 + 1), sizeof(float));
    q.dy = rand_buf(K * C * 49 + 1, -1, 1, seed, 8);
    q.dx = callocCheck((size_t)nx, sizeof(float));
    r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "roi_align_%lld", (long long)S);
    r->fwd_ms = time_median_ms(roi_fwd, &q, warm, rep);
    r->bwd_ms = time_median_ms(roi_bwd, &q, warm, rep);
    free(q.x), free(q.rois), free(q.y), free(q.dy), free(q.dx);
  }
  int have_torch = config_bool(cfg, "bench.torch") && run_torch(cfg, threads, rows, nrows) == 0;
  printf("\n%-18s %10s %10s %10s | %12s %12s %12s | %8s\n", "op", "fwd ms", "bwd ms", "total",
         "torch fwd", "torch bwd", "torch total", "speedup");
  for (int i = 0; i < nrows; i++) {
    bench_row *r = &rows[i];
    double ours = r->fwd_ms + r->bwd_ms, theirs = r->torch_fwd_ms + r->torch_bwd_ms;
    if (have_torch && theirs > 0)
      printf("%-18s %10.2f %10.2f %10.2f | %12.2f %12.2f %12.2f | %7.2fx\n", r->name, r->fwd_ms,
             r->bwd_ms, ours, r->torch_fwd_ms, r->torch_bwd_ms, theirs, theirs / ours);
    else
      printf("%-18s %10.2f %10.2f %10.2f | %12s %12s %12s | %8s\n", r->name, r->fwd_ms, r->bwd_ms,
             ours, "-", "-", "-", "-");
  }
  printf("(speedup = PyTorch time / our time, forward + backward; %d threads)\n", threads);
  return 0;
}

int cmd_bench(int argc, char **argv) {
  if (argc >= 1 && !strcmp(argv[0], "data")) return bench_data(argc - 1, argv + 1);
  if (argc >= 1 && !strcmp(argv[0], "embed")) return bench_embed(argc - 1, argv + 1);
  if (argc >= 1 && !strcmp(argv[0], "track")) return bench_track(argc - 1, argv + 1);
  if (argc >= 1 && !strcmp(argv[0], "train")) return bench_train(argc - 1, argv + 1);
  if (argc >= 1 && !strcmp(argv[0], "gpu")) return bench_gpu(argc - 1, argv + 1);
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = 1;
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 256 ? "too many arguments" : masa_errmsg());
  } else if (nrest != 1 || strcmp(rest[0], "ops") != 0) {
    log_error("usage: masa bench ops [--config FILE] [--set bench.KEY=VALUE]... [--threads N]");
  } else {
    rc = bench_ops(&cfg);
  }
  config_free(&cfg);
  return rc;
}
