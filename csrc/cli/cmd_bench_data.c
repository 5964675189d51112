// `masa bench data`: how many training view pairs per second one core makes on SA-1B-sized
// inputs (1500x2250 JPEGs with ~100 masks; synthesised with data/synth.h unless --data is
// given), beside the ceiling of just decoding the two JPEGs a pair needs at full size, and beside
// a straightforward Python pipeline (tools/bench_data_python.py: OpenCV + pycocotools + numpy,
// the same steps and the same composed transform) run on the same files in the same run.
// Every rate is per CPU-second of the process (CLOCK_PROCESS_CPUTIME_ID; Python: process_time),
// so other jobs on a shared machine do not skew it, and a multi-threaded row is per core.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synth.h"

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

static const char *bench_data_usage =
    "usage: masa bench data [--data DIR] [--images N] [--pairs N] [--workers N] [--python PY | --no-python]\n"
    "                       [--config FILE] [--set aug.KEY=VALUE]...\n"
    "  Without --data, N (default 6) SA-1B-sized images (1500x2250, 100 objects) are synthesised\n"
    "  into a temporary folder. --pairs: pairs timed per pipeline (default 24). --workers: threads\n"
    "  of the loader row (default: cores, at most data.workers).";

static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
  const char *data;
  long images, pairs, workers;
  const char *python;
  int no_python;
} bench_args;

static int parse_args(int nrest, char **rest, bench_args *a) {
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i], *v = i + 1 < nrest ? rest[i + 1] : NULL;
    if (!strcmp(k, "--no-python")) {
      a->no_python = 1;
      continue;
    }
    if (!v) return masa_error("bench data: '%s' needs a value or is unknown", k);
    i++;
    char *end;
    long n = strtol(v, &end, 10);
    int num_ok = *v && !*end && n >= 1;
    if (!strcmp(k, "--data")) a->data = v;
    else if (!strcmp(k, "--python")) a->python = v;
    else if (!strcmp(k, "--images") && num_ok) a->images = n;
    else if (!strcmp(k, "--pairs") && num_ok) a->pairs = n;
    else if (!strcmp(k, "--workers") && num_ok) a->workers = n;
    else return masa_error("bench data: bad option '%s %s'", k, v);
  }
  return MASA_OK;
}

// Runs the Python pipeline; returns its pairs/s or a negative value.
static double run_python(const bench_args *a, const char *dir, const loader_opts *o) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s %s/tools/bench_data_python.py --data '%s' "
           "--pairs %ld --size %d --seed %llu",
           a->python, getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR, dir,
           a->pairs, o->views.size, (unsigned long long)o->seed);
  log_info("bench data: running the Python pipeline: %s", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t cap = 1 << 16, len = 0, got;
  char *out = mallocCheck(cap);
  while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  int status = pclose(p);
  double r = -1;
  cJSON *j = status == 0 ? cJSON_Parse(out) : NULL;
  cJSON *v = j ? cJSON_GetObjectItem(j, "pairs_per_s") : NULL;
  if (cJSON_IsNumber(v)) r = v->valuedouble;
  else log_warn("bench data: the Python pipeline failed (status %d); showing our numbers only", status);
  cJSON_Delete(j);
  free(out);
  return r;
}

static int bench(const config *cfg, const bench_args *a) {
  loader_opts o;
  if (loader_opts_from_config(cfg, &o) != MASA_OK) return MASA_ERR;
  char tmp[] = "/tmp/masa_bench_data_XXXXXX";
  const char *dir = a->data;
  if (!dir) {
    if (!mkdtemp(tmp)) return masa_error("cannot create a temporary folder in /tmp");
    synth_opts so;
    synth_default_opts(&so);
    so.n_images = a->images, so.h = 1500, so.w = 2250, so.objects_min = so.objects_max = 100;
    log_info("bench data: synthesising %ld SA-1B-sized images (1500x2250, 100 objects) in %s", a->images, tmp);
    if (synth_sa1b(&so, tmp) != MASA_OK) return MASA_ERR;
    dir = tmp;
  }
  dataset_opts dopts = o.ds;
  dopts.load_masks = 1;
  if (!a->data) dopts.index_dir = o.ds.index_dir = tmp;  // removed with the folder
  dataset *d = dataset_open(dir, &dopts);
  if (!d) return MASA_ERR;
  int64_t M = dataset_size(d);
  long P = a->pairs;
  log_info("bench data: %s; %ld pairs per pipeline, views %dx%d", dataset_describe(d), P, o.views.size, o.views.size);
  raw_sample *raw = callocCheck((size_t)M, sizeof(raw_sample));
  int64_t anns = 0;
  double t0 = cpu_now();
  for (int64_t i = 0; i < M; i++) {
    if (dataset_load(d, i, &raw[i]) != MASA_OK) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", masa_errmsg());
      for (int64_t k = 0; k < i; k++) raw_sample_free(&raw[k]);
      free(raw);
      dataset_close(d);
      return masa_error("bench data needs readable samples: %s", msg);
    }
    anns += raw[i].n_anns;
  }
  double t_load = (cpu_now() - t0) / (double)M;
  // The pairs: sample i % M with partner (7 i + 3) % M, the same rule in the Python script.
  // (1) Decoding the two JPEGs of each pair at full size: the ceiling of any pipeline that does.
  t0 = cpu_now();
  for (long i = 0; i < P; i++) {
    int64_t idx[2] = {i % M, (7 * i + 3) % M};
    for (int k = 0; k < 2; k++) {
      image_u8 im;
      if (image_decode(raw[idx[k]].jpeg, raw[idx[k]].jpeg_size, 1, &im, raw[idx[k]].name) != MASA_OK) return MASA_ERR;
      image_free(&im);
    }
  }
  double decode_ps = P / (cpu_now() - t0);
  // (2) Pairs from samples in memory, (3) end to end with reading and parsing both samples.
  int64_t plane = 3 * (int64_t)o.views.size * o.views.size;
  float *img0 = mallocCheck((size_t)plane * sizeof(float)), *img1 = mallocCheck((size_t)plane * sizeof(float));
  int64_t boxes = 0, denoms = 0;
  t0 = cpu_now();
  for (long i = 0; i < P; i++) {
    view_pair p;
    if (view_pair_build(&o.views, &raw[i % M], &raw[(7 * i + 3) % M], o.seed, (uint64_t)i, &p, img0, img1) != VIEWS_OK)
      return MASA_ERR;
    boxes += p.v[0].n + p.v[1].n;
    denoms += p.main_denom;
    view_pair_free(&p);
  }
  double views_ps = P / (cpu_now() - t0);
  t0 = cpu_now();
  for (long i = 0; i < P; i++) {
    raw_sample m, x;
    if (dataset_load(d, i % M, &m) != MASA_OK || dataset_load(d, (7 * i + 3) % M, &x) != MASA_OK) return MASA_ERR;
    view_pair p;
    if (view_pair_build(&o.views, &m, &x, o.seed, (uint64_t)i, &p, img0, img1) != VIEWS_OK) return MASA_ERR;
    view_pair_free(&p);
    raw_sample_free(&m);
    raw_sample_free(&x);
  }
  double e2e_ps = P / (cpu_now() - t0);
  for (int64_t i = 0; i < M; i++) raw_sample_free(&raw[i]);
  free(raw);
  free(img0);
  free(img1);
  dataset_close(d);
  // (4) The loader with several workers (all its stages), per core.
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  long W = a->workers ? a->workers : (cores < o.workers ? cores : o.workers);
  if (W < 1) W = 1;
  loader_opts lo = o;
  lo.path = dir, lo.workers = (int)W, lo.batch_size = 1, lo.prefetch = (int)W;
  lo.epoch_length = P + 2 * W + 8;
  double loader_ps = -1;
  loader *l = loader_open(&lo, NULL);
  if (l) {
    if (loader_next(l)) {  // the first batch includes thread start-up
      t0 = cpu_now();
      long got = 0;
      for (; got < P; got++)
        if (!loader_next(l)) break;
      loader_ps = got / (cpu_now() - t0);
    }
    loader_close(l);
  }
  double py_ps = a->no_python ? -1 : run_python(a, dir, &o);
  if (!a->data) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) log_warn("could not remove %s", tmp);
  }

  printf("\nview pairs on %lld SA-1B-sized images (%.0f masks each on average), views %dx%d, box mode %s\n",
         (long long)M, (double)anns / (double)M, o.views.size, o.views.size,
         o.views.boxes == BOX_EXACT ? "exact" : "corners");
  printf("%-52s %14s %10s\n", "pipeline", "pairs/s/core", "vs Python");
  const char *names[5] = {"JPEG decode only (2 full-size decodes per pair)", "masa: views from samples in memory",
                          "masa: end to end (read, parse JSON+RLE, views)", NULL,
                          "Python: OpenCV + pycocotools + numpy, end to end"};
  char loader_name[96];
  snprintf(loader_name, sizeof loader_name, "masa: loader, %ld worker threads", W);
  names[3] = loader_name;
  double rates[5] = {decode_ps, views_ps, e2e_ps, loader_ps, py_ps};
  for (int r = 0; r < 5; r++) {
    if (rates[r] <= 0) {
      printf("%-52s %14s %10s\n", names[r], "-", "-");
      continue;
    }
    if (py_ps > 0) printf("%-52s %14.2f %9.2fx\n", names[r], rates[r], rates[r] / py_ps);
    else printf("%-52s %14.2f %10s\n", names[r], rates[r], "-");
  }
  printf("(rates per CPU-second of the process; reading + parsing one sample: %.1f ms; mean DCT\n"
         " decode denominator %.2f; %.1f boxes per view; the loader row also pays for up to %ld pairs\n"
         " prepared ahead and for thread hand-offs)\n",
         1e3 * t_load, (double)denoms / (double)P, (double)boxes / (2.0 * (double)P), W);
  return MASA_OK;
}

int bench_data(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = 1;
  char venv[1024];
  snprintf(venv, sizeof venv, "%s/.venv/bin/python",
           getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR);
  bench_args a = {NULL, 6, 24, 0, access(venv, X_OK) == 0 ? venv : "/usr/bin/python3", 0};
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 256 ? "too many arguments" : masa_errmsg());
  } else if (parse_args(nrest, rest, &a) != MASA_OK) {
    log_error("%s\n%s", masa_errmsg(), bench_data_usage);
  } else if (bench(&cfg, &a) != MASA_OK) {
    log_error("bench data: %s", masa_errmsg());
  } else {
    rc = 0;
  }
  config_free(&cfg);
  return rc;
}
