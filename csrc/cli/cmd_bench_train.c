// `masa bench train`: what a training step of `masa train` costs on this CPU. Rows:
// - the demo recipe (configs/demo.cfg at its view size and batch) and MASA-R50
//   (configs/masa_r50.cfg, 1024x1024 views, 1 pair; one timed step after one warm-up);
//   step time, pairs/s, the loader's share (time blocked in loader_next over the whole step),
//   the activation arena peak and the process max RSS; beside the same model, RoI counts and
//   losses in PyTorch (tools/bench_train_torch.py on tests/reference/masa_ref.py) at the same
//   shapes, thread count and optimizer, run in the same invocation;
// - scaling: the demo model at view sizes 512 / 768 / 1024 (batch 1), and 1 rank vs 2 ranks
//   (`mpirun -np 2 --oversubscribe` of this program, threads split between the ranks).
// The step is the trainer's own (train/train_step.h) plus the optimizer step at the base lr.
// Data: synthetic SA-1B images (data/synth.h) in a temporary folder unless --data is given.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <omp.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/log.h"
#include "data/loader.h"
#include "data/synth.h"
#include "model/masa_model.h"
#include "train/optim.h"
#include "train/train_step.h"

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

static const char *bench_train_usage =
    "usage: masa bench train [--parts LIST] [--quick] [--data DIR] [--steps N] [--sizes LIST]\n"
    "                        [--python PY | --no-python] [--threads N] [--set KEY=VALUE]...\n"
    "  --parts: comma list of demo, r50, scale, ranks (default all but r50; the PyTorch column needs\n"
    "  demo/r50 and a python with torch). --steps: timed steps of the demo row (default 3; R50\n"
    "  always 1, scaling rows 2). --sizes: view sizes of the scaling rows (default 512,768,1024).\n"
    "  --quick: demo at view 128 with batch 2, scaling at 128,160, one step each, no R50 row.\n"
    "  --set applies to the demo recipe (and the scaling rows).";

#define MAX_SIZES 8

typedef struct {
  const char *data, *python, *parts;
  int no_python, quick, steps, nsizes;
  long sizes[MAX_SIZES];
  const char *sets[64];
  int nsets;
  int worker;          // internal: one rank of the 2-rank row (launched by mpirun)
  long worker_size;
} train_bench_args;

typedef struct {
  char name[48];
  int size, batch, world, threads, ok;
  double step_ms, wait_ms, pairs_per_s, arena_mb, rss_mb;
  double key_rois, ref_rois, det_rois;  // per pair (averaged over the timed steps)
  int distill;
  char optim[8];
  double torch_ms, torch_rss_mb;
  int torch_ok;
} train_row;

static const char *src_dir(void) {
  return getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR;
}

static double rss_peak_mb(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_maxrss * 1024.0 / 1e6;  // Linux: kilobytes
}

static int has_part(const train_bench_args *a, const char *p) {
  // The MASA-R50 row is opt-in (--parts ...,r50): its PyTorch step at 1024 takes minutes and
  // ~9 GB on a CPU.
  if (!a->parts) return strcmp(p, "r50") != 0;
  size_t n = strlen(p);
  for (const char *s = a->parts; (s = strstr(s, p)); s += n)
    if ((s == a->parts || s[-1] == ',') && (s[n] == ',' || !s[n])) return 1;
  return 0;
}

static int parse_args(int nrest, char **rest, train_bench_args *a) {
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i], *v = i + 1 < nrest ? rest[i + 1] : NULL;
    if (!strcmp(k, "--no-python")) { a->no_python = 1; continue; }
    if (!strcmp(k, "--quick")) { a->quick = 1; continue; }
    if (!strcmp(k, "--rank-worker")) { a->worker = 1; continue; }
    if (!v) return masa_error("bench train: '%s' needs a value or is unknown", k);
    i++;
    char *end;
    long n = strtol(v, &end, 10);
    int num_ok = *v && !*end && n >= 1 && n <= 100000;
    if (!strcmp(k, "--data")) a->data = v;
    else if (!strcmp(k, "--python")) a->python = v;
    else if (!strcmp(k, "--parts")) {
      a->parts = v;
      for (const char *s = v; *s;) {
        size_t len = strcspn(s, ",");
        if (!((len == 4 && !strncmp(s, "demo", 4)) || (len == 3 && !strncmp(s, "r50", 3)) ||
              (len == 5 && !strncmp(s, "scale", 5)) || (len == 5 && !strncmp(s, "ranks", 5))))
          return masa_error("bench train: --parts: unknown part '%.*s' (demo, r50, scale, ranks)", (int)len, s);
        s += len + (s[len] == ',');
      }
    } else if (!strcmp(k, "--steps") && num_ok) a->steps = (int)n;
    else if (!strcmp(k, "--size") && num_ok) a->worker_size = n;
    else if (!strcmp(k, "--sizes")) {
      a->nsizes = 0;
      for (char *s = (char *)v; *s && a->nsizes < MAX_SIZES;) {
        long z = strtol(s, &end, 10);
        if (end == s || z < 32 || (*end && *end != ',')) return masa_error("bench train: --sizes: expected sizes >= 32 like 512,768, got '%s'", v);
        a->sizes[a->nsizes++] = z;
        s = *end ? end + 1 : end;
      }
    } else return masa_error("bench train: bad option '%s %s'", k, v);
  }
  return MASA_OK;
}

// A recipe with every schema registered, the user's --set (demo rows), and the bench's own keys.
static int row_config(config *cfg, const char *recipe, const train_bench_args *a, int user_sets,
                      const char *data, int size, int batch, int64_t positions) {
  config_init(cfg);
  register_all_schemas(cfg);
  char path[1024], v[64];
  snprintf(path, sizeof path, "%s/configs/%s", src_dir(), recipe);
  if (config_load_file(cfg, path) != MASA_OK) return MASA_ERR;
  for (int i = 0; user_sets && i < a->nsets; i++)
    if (config_set_arg(cfg, a->sets[i]) != MASA_OK) return MASA_ERR;
  if (config_set(cfg, "data.path", data, "bench") != MASA_OK) return MASA_ERR;
  if (!a->data && config_set(cfg, "data.index_dir", data, "bench") != MASA_OK) return MASA_ERR;
  snprintf(v, sizeof v, "%d", size);
  if (size > 0 && config_set(cfg, "aug.view_size", v, "bench") != MASA_OK) return MASA_ERR;
  snprintf(v, sizeof v, "%d", batch);
  if (batch > 0 && config_set(cfg, "data.batch_size", v, "bench") != MASA_OK) return MASA_ERR;
  snprintf(v, sizeof v, "%lld", (long long)positions);
  if (config_set(cfg, "data.epoch_length", v, "bench") != MASA_OK) return MASA_ERR;
  if (config_set(cfg, "data.sampling", "random", "bench") != MASA_OK) return MASA_ERR;
  return MASA_OK;
}

// Runs warmup + steps training steps of cfg's recipe on this rank; fills r (times: medians over
// the timed steps, rank 0's view). Returns MASA_OK or MASA_ERR with masa_errmsg().
static int run_steps(config *cfg, int warmup, int steps, dist_ctx *dist, train_row *r) {
  masa_model_cfg mc;
  optim_opts oo;
  loader_opts lo;
  if (masa_model_cfg_from_config(cfg, &mc) || optim_opts_from_config(cfg, &oo) ||
      loader_opts_from_config(cfg, &lo))
    return MASA_ERR;
  lo.rank = dist->rank, lo.world = dist->world;
  masa_model m;
  masa_model_build(&m, &mc);
  masa_model_init(&m, (uint64_t)config_int(cfg, "train.seed"));
  train_stepper *st = train_stepper_open(cfg, &m);
  if (!st) {
    masa_model_free(&m);
    return MASA_ERR;
  }
  loader *ld = loader_open(&lo, NULL);
  if (!ld) {
    train_stepper_close(st);
    masa_model_free(&m);
    return MASA_ERR;
  }
  optim opt;
  optim_init(&opt, &oo, &m.params);
  arena ar;
  arena_init(&ar, 0);
  model_ctx ctx = {&m.params, &ar, 1, dist->world > 1 ? dist_allreduce_sum_f64 : NULL, dist, NULL};
  r->size = lo.views.size, r->batch = lo.batch_size, r->world = dist->world;
  r->threads = omp_get_max_threads();
  r->distill = config_bool(cfg, "train.distill");
  snprintf(r->optim, sizeof r->optim, "%s", optim_kind_name(oo.kind));
  double *t_step = mallocCheck((size_t)steps * sizeof(double)), wait = 0, rois[3] = {0, 0, 0};
  int rc = MASA_OK;
  for (int it = 0; it < warmup + steps; it++) {
    dist_barrier(dist);
    double t0 = time_now();
    const loader_batch *b = loader_next(ld);
    double t1 = time_now();
    if (!b) {
      rc = MASA_ERR;
      break;
    }
    train_step_stats ss;
    train_stepper_run(st, &ctx, b, it, dist->rank, dist->world, &ss);
    if (dist->world > 1) {
      dist_allreduce_sum_f32(m.params.grads, (int64_t)m.params.trainable_total, dist);
      float inv = 1.0f / (float)dist->world;
      for (size_t i = 0; i < m.params.trainable_total; i++) m.params.grads[i] *= inv;
    }
    optim_step_info info;
    if (optim_step(&opt, &m.params, oo.lr, ss.loss, &info) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    dist_barrier(dist);
    double t2 = time_now();
    if (it >= warmup) {
      t_step[it - warmup] = t2 - t0;
      wait += t1 - t0;
      rois[0] += ss.key_rois / ss.images, rois[1] += ss.ref_rois / ss.images;
      rois[2] += ss.det_rois / ss.images;
    }
  }
  if (rc == MASA_OK) {
    double sum = 0;
    for (int i = 0; i < steps; i++) sum += t_step[i];
    r->step_ms = 1e3 * sum / steps;  // mean: with 1-3 steps a median hides nothing
    r->wait_ms = 1e3 * wait / steps;
    r->pairs_per_s = (double)r->batch * r->world / (sum / steps);
    r->key_rois = rois[0] / steps, r->ref_rois = rois[1] / steps, r->det_rois = rois[2] / steps;
    r->arena_mb = (double)ar.peak / 1e6;
    r->rss_mb = rss_peak_mb();
    r->ok = 1;
  }
  free(t_step);
  arena_free(&ar);
  optim_free(&opt);
  loader_close(ld);
  train_stepper_close(st);
  masa_model_free(&m);
  return rc;
}

static cJSON *run_json(const char *cmd) {
  log_info("bench train: %s", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) return NULL;
  size_t cap = 1 << 16, len = 0, got;
  char *out = mallocCheck(cap);
  while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  int status = pclose(p);
  // The JSON is the last line (mpirun or libraries may print before it).
  char *last = out;
  for (char *s = out; *s; s++)
    if (*s == '\n' && s[1]) last = s + 1;
  cJSON *j = status == 0 ? cJSON_Parse(last) : NULL;
  if (!j) log_warn("bench train: '%s' failed (status %d)", cmd, status);
  free(out);
  return j;
}

static double json_num(const cJSON *j, const char *k) {
  cJSON *v = cJSON_GetObjectItem(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

// The PyTorch side at r's shapes and RoI counts.
static void run_torch(const config *cfg, const train_bench_args *a, int warmup, int steps, train_row *r) {
  char dir[] = "/tmp/masa_bench_train_XXXXXX";
  if (!mkdtemp(dir)) return;
  char path[64];
  snprintf(path, sizeof path, "%s/model.cfg", dir);
  char *text = config_dump(cfg);
  FILE *f = fopen(path, "w");
  if (f) fputs(text, f), fclose(f);
  free(text);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "OMP_NUM_THREADS=%d %s %s/tools/bench_train_torch.py --config %s --size %d --batch %d "
           "--key-rois %.0f --ref-rois %.0f --det-rois %.0f --distill %d --optim %s --lr %g "
           "--warmup %d --steps %d --threads %d",
           r->threads, a->python, src_dir(), path, r->size, r->batch, r->key_rois, r->ref_rois,
           r->det_rois, r->distill, r->optim, config_float(cfg, "optim.lr"), warmup, steps, r->threads);
  cJSON *j = f ? run_json(cmd) : NULL;
  remove(path);
  rmdir(dir);
  if (!j) return;
  r->torch_ms = json_num(j, "step_ms");
  r->torch_rss_mb = json_num(j, "rss_peak_mb");
  r->torch_ok = r->torch_ms > 0;
  cJSON_Delete(j);
}

// The 2-rank row: this program under mpirun, threads split between the ranks.
static void run_ranks(const char *data, int size, int steps, int threads,
                      train_row *r) {
  char self[1024];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = 0;
  int per = threads / 2 > 0 ? threads / 2 : 1;
  char cmd[3072];
  snprintf(cmd, sizeof cmd,
           "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=%d "
           "mpirun -np 2 --oversubscribe %s bench train --rank-worker --data '%s' --size %d "
           "--steps %d --threads %d --log-level warn 2>/dev/null",
           per, self, data, size, steps, per);
  cJSON *j = run_json(cmd);
  if (!j) return;
  r->world = (int)json_num(j, "world");
  r->batch = (int)json_num(j, "batch");
  r->step_ms = json_num(j, "step_ms");
  r->wait_ms = json_num(j, "wait_ms");
  r->pairs_per_s = json_num(j, "pairs_per_s");
  r->arena_mb = json_num(j, "arena_mb");
  r->rss_mb = json_num(j, "rss_mb");
  r->size = size, r->threads = per;
  r->ok = r->world == 2 && r->step_ms > 0;
  if (r->world != 2) log_warn("bench train: mpirun started %d rank(s), not 2 (MPI not compiled in?)", r->world);
  cJSON_Delete(j);
}

// Internal: one rank of the 2-rank row; rank 0 prints the row as JSON.
static int rank_worker(const train_bench_args *a, int user_sets) {
  dist_ctx dist;
  dist_init(&dist, NULL, NULL);
  config cfg;
  int steps = a->steps ? a->steps : 2, rc = 1;
  train_row r;
  memset(&r, 0, sizeof r);
  if (row_config(&cfg, "demo.cfg", a, user_sets, a->data, (int)a->worker_size, 0,
                 (int64_t)(steps + 3) * 64 * dist.world) != MASA_OK ||
      run_steps(&cfg, 1, steps, &dist, &r) != MASA_OK) {
    log_error("bench train: rank %d: %s", dist.rank, masa_errmsg());
  } else {
    rc = 0;
    if (dist.rank == 0)
      printf("{\"world\": %d, \"batch\": %d, \"step_ms\": %.3f, \"wait_ms\": %.3f, \"pairs_per_s\": %.4f, "
             "\"arena_mb\": %.2f, \"rss_mb\": %.2f}\n",
             r.world, r.batch, r.step_ms, r.wait_ms, r.pairs_per_s, r.arena_mb, r.rss_mb);
  }
  config_free(&cfg);
  dist_finalize(&dist);
  return rc;
}

static void print_row(const train_row *r) {
  if (!r->ok) {
    printf("%-24s %5s %6s %10s %9s %7s %9s %9s | %10s %8s\n", r->name, "-", "-", "-", "-", "-", "-",
           "-", "-", "-");
    return;
  }
  printf("%-24s %5d %3dx%-2d %10.1f %9.3f %6.1f%% %9.1f %9.1f |", r->name, r->size, r->world,
         r->batch, r->step_ms, r->pairs_per_s, 100.0 * r->wait_ms / r->step_ms, r->arena_mb, r->rss_mb);
  if (r->torch_ok)
    printf(" %10.1f %7.2fx\n", r->torch_ms, r->torch_ms / (r->step_ms - r->wait_ms));
  else
    printf(" %10s %8s\n", "-", "-");
}

static int bench(const train_bench_args *a, int user_sets) {
  int threads = omp_get_max_threads(), torch = !a->no_python;
  int demo_size = a->quick ? 128 : 0, demo_batch = a->quick ? 2 : 0;
  int demo_steps = a->steps ? a->steps : (a->quick ? 1 : 3), scale_steps = a->quick ? 1 : 2;
  long qsizes[2] = {128, 160};
  const long *sizes = a->nsizes ? a->sizes : a->quick ? qsizes : (const long[]){512, 768, 1024};
  int nsizes = a->nsizes ? a->nsizes : a->quick ? 2 : 3;
  char tmp[] = "/tmp/masa_bench_train_XXXXXX";
  const char *data = a->data;
  if (!data) {
    if (!mkdtemp(tmp)) return masa_error("cannot create a temporary folder in /tmp");
    synth_opts so;
    synth_default_opts(&so);
    so.n_images = 8;
    if (!a->quick) so.h = 768, so.w = 1024;
    log_info("bench train: synthesising %lld images (%dx%d) in %s", (long long)so.n_images, so.w, so.h, tmp);
    if (synth_sa1b(&so, tmp) != MASA_OK) return MASA_ERR;
    data = tmp;
  }
  dist_ctx one = {0, 1, 0, 0};
  train_row rows[4 + MAX_SIZES];
  memset(rows, 0, sizeof rows);
  int nrows = 0, rc = MASA_OK, demo_row = -1;
  config cfg;
  // (1)-(4): the recipes at their shapes, then PyTorch at the same shapes.
  for (int k = 0; k < 2 && rc == MASA_OK; k++) {
    int r50 = k == 1;
    if (!has_part(a, r50 ? "r50" : "demo")) continue;
    train_row *r = &rows[nrows];
    snprintf(r->name, sizeof r->name, "%s", r50 ? "MASA-R50" : "demo (R18 w16, 64 ch)");
    int warm = 1, steps = r50 ? 1 : demo_steps;
    int size = r50 ? 1024 : demo_size, batch = r50 ? 1 : demo_batch;
    if ((rc = row_config(&cfg, r50 ? "masa_r50.cfg" : "demo.cfg", a, !r50 && user_sets, data, size, batch,
                         (int64_t)(warm + steps + 3) * 64)) == MASA_OK) {
      log_info("bench train: %s, %d warm-up + %d timed step(s)", r->name, warm, steps);
      rc = run_steps(&cfg, warm, steps, &one, r);
      if (rc == MASA_OK && torch) run_torch(&cfg, a, warm, steps, r);
    }
    config_free(&cfg);
    if (!r50) demo_row = nrows;
    nrows++;
  }
  // (5) scaling with the view size (demo model, batch 1) and with ranks.
  int first_scale = nrows;
  for (int i = 0; i < nsizes && rc == MASA_OK && has_part(a, "scale"); i++) {
    train_row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "demo, view %ld", sizes[i]);
    if ((rc = row_config(&cfg, "demo.cfg", a, user_sets, data, (int)sizes[i], 1, (int64_t)(scale_steps + 4) * 64)) == MASA_OK)
      rc = run_steps(&cfg, 1, scale_steps, &one, r);
    config_free(&cfg);
  }
  train_row ranks[2];
  memset(ranks, 0, sizeof ranks);
  int do_ranks = rc == MASA_OK && has_part(a, "ranks") && !user_sets;
  if (rc == MASA_OK && has_part(a, "ranks") && user_sets)
    log_warn("bench train: the ranks rows use demo.cfg as is; skipped because --set was given");
  if (do_ranks) {
    int size = a->quick ? 128 : 0;
    snprintf(ranks[0].name, sizeof ranks[0].name, "1 rank x %d threads", threads);
    if (demo_row >= 0 && !a->quick) {
      ranks[0] = rows[demo_row];
      ranks[0].torch_ok = 0;
      snprintf(ranks[0].name, sizeof ranks[0].name, "1 rank x %d threads", threads);
    } else if ((rc = row_config(&cfg, "demo.cfg", a, 0, data, size, 0, 6 * 64)) == MASA_OK) {
      rc = run_steps(&cfg, 1, a->quick ? 1 : 2, &one, &ranks[0]);
      config_free(&cfg);
    } else {
      config_free(&cfg);
    }
    snprintf(ranks[1].name, sizeof ranks[1].name, "2 ranks x %d thread%s", threads / 2 > 0 ? threads / 2 : 1,
             threads / 2 > 1 ? "s" : "");
    if (rc == MASA_OK) run_ranks(data, ranks[0].size, a->quick ? 1 : 2, threads, &ranks[1]);
  }
  if (!a->data) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) log_warn("could not remove %s", tmp);
  }
  if (rc != MASA_OK) return rc;

  printf("\nmasa train step on this CPU, %d threads (step = loader wait + forward + backward of both views,\n"
         "all losses, optimizer step; mean over the timed steps after 1 warm-up)\n", threads);
  printf("%-24s %5s %6s %10s %9s %7s %9s %9s | %10s %8s\n", "row", "view", "rk x B", "step ms",
         "pairs/s", "loader", "arena MB", "maxRSS MB", "torch ms", "speedup");
  for (int i = 0; i < first_scale; i++) print_row(&rows[i]);
  for (int i = 0; i < first_scale; i++) {
    train_row *r = &rows[i];
    if (!r->ok) continue;
    printf("  %s: %s, RoIs per pair: track %.0f key / %.0f ref, box head %.0f%s; PyTorch max RSS %s",
           r->name, r->optim, r->key_rois, r->ref_rois, r->det_rois, r->distill ? " (distillation on)" : "",
           r->torch_ok ? "" : "-\n");
    if (r->torch_ok) printf("%.1f MB\n", r->torch_rss_mb);
  }
  if (nrows > first_scale) {
    printf("scaling with the view size (demo model, batch 1):\n");
    for (int i = first_scale; i < nrows; i++) print_row(&rows[i]);
  }
  if (do_ranks) {
    printf("scaling with ranks (demo model, batch per rank from the recipe):\n");
    print_row(&ranks[0]);
    print_row(&ranks[1]);
    if (ranks[0].ok && ranks[1].ok)
      printf("  2 ranks / 1 rank: %.2fx pairs/s\n", ranks[1].pairs_per_s / ranks[0].pairs_per_s);
    else
      printf("  (2-rank row unavailable; by hand: OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe masa train --config configs/demo.cfg ...)\n");
  }
  printf("(loader = share of the step spent blocked in loader_next; arena = activation arena peak;\n"
         " maxRSS = getrusage peak of the process so far; speedup = PyTorch step / our step less\n"
         " the loader wait (PyTorch gets its inputs ready-made); same model, RoI counts and losses,\n"
         " PyTorch's RoIs are GT + jittered boxes and its distillation losses same-shape stand-ins)\n");
  return MASA_OK;
}

int bench_train(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = 1;
  char venv[1024];
  snprintf(venv, sizeof venv, "%s/.venv/bin/python", src_dir());
  train_bench_args a;
  memset(&a, 0, sizeof a);
  a.python = access(venv, X_OK) == 0 ? venv : "/usr/bin/python3";
  // --set goes to the recipes the bench loads itself (validated here against the schemas).
  for (int i = 0; i + 1 < argc && a.nsets < 64; i++)
    if (!strcmp(argv[i], "--set")) a.sets[a.nsets++] = argv[i + 1];
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s\n%s", argc > 256 ? "too many arguments" : masa_errmsg(), bench_train_usage);
  } else if (parse_args(nrest, rest, &a) != MASA_OK) {
    log_error("%s\n%s", masa_errmsg(), bench_train_usage);
  } else if (a.worker) {
    rc = a.data && a.worker_size ? rank_worker(&a, a.nsets > 0) : 1;
  } else if (bench(&a, a.nsets > 0) != MASA_OK) {
    log_error("bench train: %s", masa_errmsg());
  } else {
    rc = 0;
  }
  config_free(&cfg);
  return rc;
}
