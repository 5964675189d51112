// Optimizers, clipping and LR schedules (train/optim.c, train/schedule.c) against
// oracle_optim.py: torch.optim.SGD / AdamW with clip_grad_norm_ over 6 steps (with and without
// the no-decay groups), and torch's / a transcription of mmengine's schedulers. Plus the
// non-finite step guard, the fixed-order gradient norm and the recipe keys.
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "harness.h"
#include "train/optim.h"
#include "train/schedule.h"

#define STEPS 6

static const struct {
  const char *name;
  int ndim;
  int64_t shape[4];
  int trainable;
} ENTRIES[] = {
    {"blk.conv.weight", 4, {4, 3, 3, 3}, 1}, {"blk.conv.bias", 1, {4}, 1},
    {"blk.gn.weight", 1, {4}, 1},            {"blk.gn.bias", 1, {4}, 1},
    {"head.fc.weight", 2, {6, 10}, 1},       {"head.fc.bias", 1, {6}, 1},
    {"frozen.bn.running_mean", 1, {4}, 0},
};
#define NENT 7

// float64 datasets (learning rates) straight through HDF5: h5io reads float32 and int64 only.
static double *read_f64(const char *path, const char *name, int64_t *n) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
  if (d < 0) {
    fprintf(stderr, "%s: cannot read float64 dataset %s\n", path, name);
    exit(1);
  }
  hid_t s = H5Dget_space(d);
  *n = H5Sget_simple_extent_npoints(s);
  double *v = malloc((size_t)*n * sizeof(double));
  if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) exit(1);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return v;
}

static void make_table(param_table *t) {
  param_table_init(t);
  for (int i = 0; i < NENT; i++) param_table_add(t, ENTRIES[i].name, ENTRIES[i].ndim, ENTRIES[i].shape, ENTRIES[i].trainable);
  param_table_alloc(t);
}

static void fill_nan_grads(param_table *t) {
  for (size_t i = 0; i < t->trainable_total; i++) t->grads[i] = 0.5f;
  t->grads[7] = NAN;
}

// Runs one oracle case; `skips` inserts non-finite steps (before step 0 and before step 3) that
// must change nothing.
static void run_case(h5file *f, const char *path, const char *name, optim_kind kind, double wd,
                     int no_decay, double max_norm, int skips) {
  param_table t;
  make_table(&t);
  int64_t total = (int64_t)t.total, ntr = (int64_t)t.trainable_total;
  float *init = oracle_read(f, "init", 1, (int64_t[]){total});
  float *grads = oracle_read(f, "grads", 2, (int64_t[]){STEPS, ntr});
  char key[160], what[200];
  snprintf(key, sizeof key, "%s/params", name);
  float *ref_p = oracle_read(f, key, 2, (int64_t[]){STEPS, total});
  snprintf(key, sizeof key, "%s/m1", name);
  float *ref_m1 = oracle_read(f, key, 2, (int64_t[]){STEPS, ntr});
  float *ref_m2 = NULL;
  if (kind == OPTIM_ADAMW) {
    snprintf(key, sizeof key, "%s/m2", name);
    ref_m2 = oracle_read(f, key, 2, (int64_t[]){STEPS, ntr});
  }
  snprintf(key, sizeof key, "%s/norm", name);
  float *ref_norm = oracle_read(f, key, 1, (int64_t[]){STEPS});
  int64_t nlr;
  double *lrs = read_f64(path, kind == OPTIM_SGD ? "sgd_lr" : "adamw_lr", &nlr);
  memcpy(t.params, init, (size_t)total * sizeof(float));
  optim_opts o = {kind, lrs[0], 0.9, 0.9, 0.999, 1e-8, wd, no_decay, max_norm, 10};
  optim opt;
  optim_init(&opt, &o, &t);
  float *p_before = malloc((size_t)total * sizeof(float));
  for (int s = 0; s < STEPS; s++) {
    if (skips && (s == 0 || s == 3)) {
      memcpy(p_before, t.params, (size_t)total * sizeof(float));
      fill_nan_grads(&t);
      optim_step_info info;
      int rc = optim_step(&opt, &t, lrs[s], 1.0, &info);
      snprintf(what, sizeof what, "%s: NaN gradient before step %d is skipped, nothing changes", name, s);
      check_true(what, rc == MASA_OK && info.skipped && !memcmp(p_before, t.params, (size_t)total * sizeof(float)));
      rc = optim_step(&opt, &t, lrs[s], INFINITY, &info);  // finite grads, infinite loss
      snprintf(what, sizeof what, "%s: infinite loss before step %d is skipped", name, s);
      check_true(what, rc == MASA_OK && info.skipped && !memcmp(p_before, t.params, (size_t)total * sizeof(float)));
    }
    memcpy(t.grads, grads + s * ntr, (size_t)ntr * sizeof(float));
    optim_step_info info;
    if (optim_step(&opt, &t, lrs[s], 1.0, &info) != MASA_OK || info.skipped) {
      check_true("finite step is taken", 0);
      break;
    }
    // Per-step state, all in float32 from the same inputs; the differences are a few float32
    // ulps per step (torch's vectorised kernels may fuse multiply-adds; its norm is summed in
    // float32 where ours is double, moving the clip coefficient by ~1e-7 relative).
    float gn = (float)info.grad_norm;
    snprintf(what, sizeof what, "%s%s step %d grad norm", name, skips ? "+skips" : "", s);
    check_close(what, &gn, ref_norm + s, 1, 0, 2e-6, "float32 (torch) vs float64 (ours) sum of squares");
    snprintf(what, sizeof what, "%s%s step %d params", name, skips ? "+skips" : "", s);
    check_close(what, t.params, ref_p + s * total, total, 1e-6, 1e-5, "float32 update, a few ulps per step");
    snprintf(what, sizeof what, "%s%s step %d %s", name, skips ? "+skips" : "", s, kind == OPTIM_SGD ? "momentum" : "exp_avg");
    check_close(what, t.moment1, ref_m1 + s * ntr, ntr, 1e-7, 1e-5, "float32 moment update, a few ulps per step");
    if (ref_m2) {
      snprintf(what, sizeof what, "%s%s step %d exp_avg_sq", name, skips ? "+skips" : "", s);
      check_close(what, t.moment2, ref_m2 + s * ntr, ntr, 1e-9, 1e-5, "float32 moment update, a few ulps per step");
    }
  }
  snprintf(what, sizeof what, "%s%s: counters (steps %d, skipped %d)", name, skips ? "+skips" : "", STEPS, skips ? 4 : 0);
  check_true(what, opt.steps == STEPS && opt.skipped_total == (skips ? 4 : 0) && opt.skipped_consecutive == 0);
  free(init), free(grads), free(ref_p), free(ref_m1), free(ref_m2), free(ref_norm), free(lrs), free(p_before);
  optim_free(&opt);
  param_table_free(&t);
}

static void test_skip_limit(void) {
  param_table t;
  make_table(&t);
  optim_opts o = {OPTIM_SGD, 0.1, 0.9, 0.9, 0.999, 1e-8, 1e-4, 0, 35, 3};
  optim opt;
  optim_init(&opt, &o, &t);
  optim_step_info info;
  int rc1 = optim_step(&opt, &t, 0.1, NAN, &info);
  int rc2 = optim_step(&opt, &t, 0.1, NAN, &info);
  // A good step in between resets the consecutive count.
  for (size_t i = 0; i < t.trainable_total; i++) t.grads[i] = 0.01f;
  int rc3 = optim_step(&opt, &t, 0.1, 1.0, &info);
  check_true("skip guard: a finite step resets the consecutive count",
             rc1 == MASA_OK && rc2 == MASA_OK && rc3 == MASA_OK && !info.skipped &&
                 opt.skipped_consecutive == 0 && opt.skipped_total == 2 && opt.steps == 1);
  fill_nan_grads(&t);
  int rc = MASA_OK;
  for (int k = 0; k < 3 && rc == MASA_OK; k++) rc = optim_step(&opt, &t, 0.1, 1.0, &info);
  printf("  expected error: %s\n", masa_errmsg());
  check_true("skip guard: 3 consecutive non-finite steps (max_skips 3) are an error naming the cause",
             rc == MASA_ERR && strstr(masa_errmsg(), "3 consecutive") && strstr(masa_errmsg(), "optim.max_skips") &&
                 opt.skipped_total == 5);
  optim_free(&opt);
  param_table_free(&t);
}

static void test_norm_and_clip(uint64_t seed) {
  int64_t n = 300007;  // 5 blocks, ragged tail
  float *g = malloc((size_t)n * sizeof(float));
  rng_fill_normal(g, n, 0.0f, 1.0f, seed, 7);
  double naive = 0;
  for (int64_t i = 0; i < n; i++) naive += (double)g[i] * g[i];
  naive = sqrt(naive);
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  double a = grad_norm_l2(g, n);
  omp_set_num_threads(3);
  double b = grad_norm_l2(g, n);
  omp_set_num_threads(threads);
  check_true("grad norm: bit-identical with 1 and 3 threads", memcmp(&a, &b, sizeof a) == 0);
  check_true("grad norm: matches a sequential double sum (1e-12 relative)", fabs(a - naive) <= 1e-12 * naive);
  float *h = malloc((size_t)n * sizeof(float));
  memcpy(h, g, (size_t)n * sizeof(float));
  double coef = clip_grads(h, n, a, 10 * a);
  check_true("clip: no change when the norm is below max_norm", coef == 1.0 && !memcmp(g, h, (size_t)n * sizeof(float)));
  coef = clip_grads(h, n, a, 35.0);
  double after = grad_norm_l2(h, n);
  check_true("clip: norm becomes max_norm (35)", fabs(after - 35.0) < 35.0 * 1e-5 && coef < 1);
  coef = clip_grads(h, n, a, 0);
  check_true("clip: max_norm 0 is off", coef == 1.0);
  free(g), free(h);
}

static void test_decay_rule(void) {
  const struct {
    const char *name;
    int ndim, expect;
  } cases[] = {
      {"masa_adapter.0.lateral_convs.0.conv.weight", 4, 0},
      {"masa_adapter.0.lateral_convs.0.bn.weight", 1, 1},
      {"masa_adapter.0.lateral_convs.0.bn.bias", 1, 1},
      {"masa_adapter.1.dyhead_blocks.0.spatial_conv_offset.bias", 1, 1},
      {"masa_adapter.1.dyhead_blocks.0.spatial_conv_high.norm.weight", 1, 1},
      {"masa_adapter.1.dyhead_blocks.0.scale_attn_module.1.weight", 4, 0},
      {"track_head.embed_head.convs.0.gn.weight", 1, 1},
      {"track_head.embed_head.fc_embed.weight", 2, 0},
      {"roi_head.bbox_head.fc_cls.bias", 1, 1},
      {"masa_adapter.0.fpn1.1.ln.weight", 1, 1},
  };
  int ok = 1;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (optim_is_norm_or_bias(cases[i].name, cases[i].ndim) != cases[i].expect) {
      printf("  wrong: %s\n", cases[i].name);
      ok = 0;
    }
  check_true("no-decay rule: biases and 1-D (norm) parameters under official keys", ok);
}

static void test_schedules(const char *path, h5file *f) {
  const char *names[] = {"official", "short", "decay_in_warmup", "cosine"};
  for (int c = 0; c < 4; c++) {
    char key[128], what[160];
    int64_t np, n;
    snprintf(key, sizeof key, "lr/%s/params", names[c]);
    double *prm = read_f64(path, key, &np);  // base, N, start, ipe, epochs, gamma | eta_min
    lr_schedule s = {0};
    s.policy = c == 3 ? LR_COSINE : LR_MULTISTEP;
    s.base_lr = prm[0], s.warmup_iters = (int64_t)prm[1], s.warmup_start_factor = prm[2];
    s.total_iters = (int64_t)prm[3] * (int64_t)prm[4];
    if (c == 3) {
      s.min_lr = prm[5];
    } else {
      int nd;
      int64_t *ms, shp[TENSOR_MAX_DIMS];
      snprintf(key, sizeof key, "lr/%s/milestones", names[c]);
      if (h5_read_i64(f, key, &ms, &nd, shp) != MASA_OK) exit(1);
      s.n_milestones = (int)shp[0];
      memcpy(s.milestones, ms, (size_t)shp[0] * sizeof(int64_t));
      free(ms);
      s.gamma = prm[5];
    }
    check_true("schedule parameters valid", lr_schedule_check(&s) == MASA_OK);
    int64_t *iters, *epochs, shp[TENSOR_MAX_DIMS];
    int nd;
    snprintf(key, sizeof key, "lr/%s/iter", names[c]);
    h5_read_i64(f, key, &iters, &nd, shp);
    snprintf(key, sizeof key, "lr/%s/epoch", names[c]);
    h5_read_i64(f, key, &epochs, &nd, shp);
    for (int which = 0; which < 2; which++) {
      snprintf(key, sizeof key, "lr/%s/%s", names[c], which ? "mmengine" : "torch");
      double *ref = read_f64(path, key, &n);
      double worst = 0;
      int64_t at = 0;
      for (int64_t i = 0; i < n; i++) {
        double got = lr_at(&s, iters[i], epochs[i]), e = fabs(got - ref[i]) / ref[i];
        if (!(e <= worst)) worst = e, at = i;
      }
      // Closed form vs a chain of up to 1000 multiplications: ~1e-13 relative.
      snprintf(what, sizeof what, "lr %s vs %s (%lld iterations, worst rel err %.2g at %lld)", names[c],
               which ? "mmengine transcription" : "torch schedulers", (long long)n, worst, (long long)at);
      check_true(what, worst <= 1e-11);
      free(ref);
    }
    free(iters), free(epochs), free(prm);
  }
}

static int rel_close(double got, double want) { return fabs(got - want) <= 1e-14 * fabs(want); }

static void test_config(void) {
  config cfg;
  config_init(&cfg);
  config_register(&cfg, optim_schema);
  config_register(&cfg, lr_schema);
  optim_opts o;
  lr_schedule s;
  int ok = optim_opts_from_config(&cfg, &o) == MASA_OK && lr_schedule_from_config(&cfg, 3125, 12, &s) == MASA_OK;
  check_true("recipe defaults are the official values (SGD 0.08, momentum 0.9, wd 1e-4 on everything, clip 35)",
             ok && o.kind == OPTIM_SGD && o.lr == 0.08 && o.momentum == 0.9 && o.weight_decay == 1e-4 &&
                 !o.no_decay_norm_bias && o.clip_max_norm == 35);
  check_true("official schedule: 8e-5 at iteration 0, 0.08 from 999, x0.1 from iteration 25000 (epoch 8), x0.01 from 34375",
             ok && rel_close(lr_at(&s, 0, 0), 8e-5) && rel_close(lr_at(&s, 1, 0), 1.6e-4) &&
                 rel_close(lr_at(&s, 998, 0), 0.08 * 0.999) && rel_close(lr_at(&s, 999, 0), 0.08) &&
                 rel_close(lr_at(&s, 24999, 7), 0.08) && rel_close(lr_at(&s, 25000, 8), 0.008) &&
                 rel_close(lr_at(&s, 34374, 10), 0.008) && rel_close(lr_at(&s, 34375, 11), 0.0008) &&
                 rel_close(lr_at(&s, 37499, 11), 0.0008));
  int bad = config_set(&cfg, "lr.warmup_iters", "1", "--set") == MASA_OK &&
            lr_schedule_from_config(&cfg, 3125, 12, &s) == MASA_ERR && strstr(masa_errmsg(), "warmup_iters");
  check_true("lr.warmup_iters = 1 is rejected with a message", bad);
  int bad2 = config_set(&cfg, "optim.type", "adam", "--set") == MASA_OK && optim_opts_from_config(&cfg, &o) == MASA_ERR &&
             strstr(masa_errmsg(), "optim.type");
  check_true("unknown optim.type is rejected with a message", bad2);
  config_free(&cfg);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("optim", 20240605);
  log_set_level(LOG_ERROR);  // the skip warnings are expected here
  const char *path = argc > 1 ? argv[1] : NULL;
  h5file *f = oracle_open(path);
  run_case(f, path, "sgd", OPTIM_SGD, 1e-4, 0, 2.0, 0);
  run_case(f, path, "sgd", OPTIM_SGD, 1e-4, 0, 2.0, 1);
  run_case(f, path, "sgd_nodecay", OPTIM_SGD, 1e-2, 1, 2.0, 0);
  run_case(f, path, "sgd_noclip", OPTIM_SGD, 1e-2, 0, 0.0, 0);
  run_case(f, path, "adamw", OPTIM_ADAMW, 1e-2, 0, 2.0, 0);
  run_case(f, path, "adamw", OPTIM_ADAMW, 1e-2, 0, 2.0, 1);
  run_case(f, path, "adamw_nodecay", OPTIM_ADAMW, 5e-2, 1, 2.0, 0);
  test_skip_limit();
  test_norm_and_clip(seed);
  test_decay_rule();
  test_schedules(path, f);
  test_config();
  h5_close(f);
  return test_end();
}
