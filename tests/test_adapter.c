// The adapter modules (model/fpn, simplefpn, deform_fusion, dyhead) against the PyTorch
// reference modules of tests/reference/adapter_ref.py (tests/oracle_adapter.py): every output
// level, every parameter gradient and every input gradient, for FPN (BN train with running-stat
// update, BN frozen on odd sizes, no norm), SimpleFPN, DeformFusion (official reinterpreted high
// offsets with random and with zeroed offset convs, fix_upsample) and DyHead (reinterpreted,
// cropped, cropped-as-mmcv-runs-it, zeroed offset conv). Gradient buffers are pre-filled: the
// backward must accumulate. Also: the full-size (256-channel) key lists against the official
// state_dict keys, the official init functions, and finite differences through two-block
// DeformFusion / DyHead on a tiny configuration.
//
// Tolerances are atol + rtol * |ref| with atol = k * rms(ref) per tensor: float32 rounding errors
// scale with the magnitude of the terms summed, i.e. with the tensor's own scale.
// - FPN / SimpleFPN: conv / BN / LN / GELU chains with reductions of <= 3*3*40 terms and BN / LN
//   statistics over <= 2*32*24 elements; measured errors ~1e-6 of rms (worst 7% of threshold).
//   k 2e-5, rtol 1e-4.
// - DeformFusion / DyHead: 2-3 blocks, each a 3x3 offset conv feeding bilinear sampling, DCN,
//   GN (2 channels per group here) and for DyHead attention / DyReLU; float32 errors grow through
//   the blocks to ~1e-5 of rms (worst 9% of threshold). k 2e-4, rtol 1e-3. Input gradients get
//   k 1e-3 (worst 1.3%) as insurance: gradients with respect to the offsets are those of a
//   piecewise-bilinear function, and where a float32 sample coordinate lands on the other side
//   of an integer than the float64 one, that tap's coordinate gradient differs by O(1) and
//   reaches the input through the offset conv (no such flip occurs in this oracle data, but a
//   different BLAS rounding could produce one).
// The high-branch modes are told apart: running a case under another mode fails ~35-50 checks.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "harness.h"
#include "model/deform_fusion.h"
#include "model/dyhead.h"
#include "model/fpn.h"
#include "model/simplefpn.h"

#define PREFILL 0.25f  // gradient buffers start here: backward must accumulate

static uint64_t g_seed;

// ---------------------------------------------------------------------------------------------
// Oracle access

static float *rd(h5file *f, int64_t *numel, int *ndim, int64_t *shape, const char *fmt, ...) {
  char name[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return oracle_read_any(f, name, numel, ndim, shape);
}

static tensor rd_tensor(h5file *f, const char *fmt, const char *grp, int i) {
  tensor t = {0};
  int64_t numel;
  t.data = rd(f, &numel, &t.ndim, t.shape, fmt, grp, i);
  t.owns = 1;
  return t;
}

static float *rd_cfg(h5file *f, const char *grp, int64_t *n) {
  return rd(f, n, NULL, NULL, "%s/cfg", grp);
}

// Loads every registered parameter from <grp>/params/<key>; the oracle holds no other keys.
static void load_params(h5file *f, const char *grp, param_table *t) {
  int64_t one;
  float *np = rd(f, &one, NULL, NULL, "%s/num_params", grp);
  char what[200];
  snprintf(what, sizeof what, "%s: parameter count %d == oracle state_dict %d", grp, t->count,
           (int)np[0]);
  check_true(what, t->count == (int)np[0]);
  free(np);
  for (int i = 0; i < t->count; i++) {
    char name[400];
    snprintf(name, sizeof name, "%s/params/%s", grp, t->entries[i].name);
    float *v = oracle_read(f, name, t->entries[i].ndim, t->entries[i].shape);
    memcpy(param_ptr(t, i), v, (size_t)t->entries[i].numel * sizeof(float));
    free(v);
  }
}

static double rms(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return n > 0 ? sqrt(s / (double)n) : 0.0;
}

// check_close with atol = k * rms(ref) (+ a floor for all-zero references).
static int check_scaled(const char *what, const float *got, const float *ref, int64_t n,
                        double k, double rtol, const char *why) {
  return check_close(what, got, ref, n, k * rms(ref, n) + 1e-7, rtol, why);
}

typedef struct {
  double k_out, k_grad, k_dx, rtol;
  const char *why;
} tols;

static const tols TOL_PYRAMID = {2e-5, 2e-5, 2e-5, 1e-4,
                                 "float32 conv/BN/LN chains, reductions of <= 360 terms"};
static const tols TOL_FUSION = {2e-4, 2e-4, 1e-3, 1e-3,
                                "float32 through 2-3 DCN blocks; coordinate-gradient kink flips"};

static void check_outputs(h5file *f, const char *grp, int num, const tensor *out, const tols *tl) {
  for (int k = 0; k < num; k++) {
    int64_t n;
    float *ref = rd(f, &n, NULL, NULL, "%s/out/%d", grp, k);
    char what[200];
    snprintf(what, sizeof what, "%s out[%d] size", grp, k);
    check_true(what, n == tensor_numel(&out[k]));
    snprintf(what, sizeof what, "%s out[%d]", grp, k);
    check_scaled(what, out[k].data, ref, n, tl->k_out, tl->rtol, tl->why);
    free(ref);
  }
}

// Upstream gradients, and input-gradient buffers pre-filled with PREFILL.
static tensor *read_dy(h5file *f, const char *grp, int num) {
  tensor *dy = callocCheck((size_t)num, sizeof(tensor));
  for (int k = 0; k < num; k++) dy[k] = rd_tensor(f, "%s/dy/%d", grp, k);
  return dy;
}

static tensor *prefilled_like(const tensor *x, int num) {
  tensor *d = callocCheck((size_t)num, sizeof(tensor));
  for (int i = 0; i < num; i++) {
    d[i] = tensor_alloc(x[i].ndim, x[i].shape);
    for (int64_t j = 0; j < tensor_numel(&d[i]); j++) d[i].data[j] = PREFILL;
  }
  return d;
}

static void prefill_grads(param_table *t) {
  for (int i = 0; i < t->count; i++)
    if (t->entries[i].trainable) {
      float *g = param_grad_ptr(t, i);
      for (int64_t j = 0; j < t->entries[i].numel; j++) g[j] = PREFILL;
    }
}

static void check_minus_prefill(const char *what, const float *got, const float *ref, int64_t n,
                                double k, double rtol, const char *why) {
  float *g = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) g[i] = got[i] - PREFILL;
  check_scaled(what, g, ref, n, k, rtol, why);
  free(g);
}

static void check_input_grads(h5file *f, const char *grp, int num, const tensor *dx,
                              const tols *tl) {
  for (int i = 0; i < num; i++) {
    int64_t n;
    float *ref = rd(f, &n, NULL, NULL, "%s/dx/%d", grp, i);
    char what[200];
    snprintf(what, sizeof what, "%s dx[%d] size", grp, i);
    check_true(what, n == tensor_numel(&dx[i]));
    snprintf(what, sizeof what, "%s dx[%d]", grp, i);
    check_minus_prefill(what, dx[i].data, ref, n, tl->k_dx, tl->rtol, tl->why);
    free(ref);
  }
}

// Every trainable parameter's gradient; frozen ones must have none in the oracle either.
static void check_param_grads(h5file *f, const char *grp, param_table *t, const tols *tl) {
  int64_t one;
  float *ng = rd(f, &one, NULL, NULL, "%s/num_grads", grp);
  int trainable = 0;
  for (int i = 0; i < t->count; i++) trainable += t->entries[i].trainable;
  char what[300];
  snprintf(what, sizeof what, "%s: trainable parameters %d == oracle gradients %d", grp,
           trainable, (int)ng[0]);
  check_true(what, trainable == (int)ng[0]);
  free(ng);
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (!e->trainable) continue;
    char name[400];
    snprintf(name, sizeof name, "%s/grad/%s", grp, e->name);
    float *ref = oracle_read(f, name, e->ndim, e->shape);
    snprintf(what, sizeof what, "%s d %s", grp, e->name);
    check_minus_prefill(what, param_grad_ptr(t, i), ref, e->numel, tl->k_grad, tl->rtol,
                        tl->why);
    free(ref);
  }
}

static void free_tensors(tensor *t, int num) {
  for (int i = 0; i < num; i++) tensor_free(&t[i]);
  free(t);
}

// ---------------------------------------------------------------------------------------------
// Cases

static void run_fpn(h5file *f, const char *grp) {
  int64_t nc;
  float *cfg = rd_cfg(f, grp, &nc);
  int L = (int)cfg[1];
  fpn_cfg fc = {.num_ins = L, .num_outs = (int)cfg[2], .c_out = (int64_t)cfg[3], .trainable = 1};
  int norm = (int)cfg[4];
  fc.norm = norm == 0 ? NORM_NONE : (norm == 1 ? NORM_BN_FROZEN : NORM_BN_TRAIN);
  for (int i = 0; i < L; i++) fc.c_in[i] = (int64_t)cfg[5 + i];
  free(cfg);
  printf("-- %s\n", grp);
  param_table t;
  param_table_init(&t);
  fpn m;
  fpn_register(&m, &t, "masa_adapter.0", &fc);
  param_table_alloc(&t);
  load_params(f, grp, &t);
  arena ar;
  arena_init(&ar, (size_t)1 << 24);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  tensor *x = callocCheck((size_t)L, sizeof(tensor));
  for (int i = 0; i < L; i++) x[i] = rd_tensor(f, "%s/x/%d", grp, i);
  fpn_acts *a = callocCheck(1, sizeof *a);
  fpn_forward(&m, &ctx, x, a);
  check_outputs(f, grp, fc.num_outs, a->out, &TOL_PYRAMID);
  if (fc.norm == NORM_BN_TRAIN) {  // running statistics after one training forward
    for (int i = 0; i < t.count; i++) {
      const param_entry *e = &t.entries[i];
      if (!strstr(e->name, "running_")) continue;
      char name[400], what[300];
      snprintf(name, sizeof name, "%s/running/%s", grp, e->name);
      float *ref = oracle_read(f, name, e->ndim, e->shape);
      snprintf(what, sizeof what, "%s %s", grp, e->name);
      check_scaled(what, param_ptr(&t, i), ref, e->numel, 2e-5, 1e-4, TOL_PYRAMID.why);
      free(ref);
    }
  }
  tensor *dy = read_dy(f, grp, fc.num_outs);
  tensor *dx = prefilled_like(x, L);
  prefill_grads(&t);
  fpn_backward(&m, &ctx, a, dy, dx);
  check_input_grads(f, grp, L, dx, &TOL_PYRAMID);
  check_param_grads(f, grp, &t, &TOL_PYRAMID);
  free(a);
  free_tensors(x, L);
  free_tensors(dy, fc.num_outs);
  free_tensors(dx, L);
  arena_free(&ar);
  param_table_free(&t);
}

static void run_simplefpn(h5file *f, const char *grp) {
  int64_t nc;
  float *cfg = rd_cfg(f, grp, &nc);
  simplefpn_cfg sc = {.c_vit = (int64_t)cfg[1], .c_out = (int64_t)cfg[2],
                      .num_outs = (int)cfg[3], .use_residual = 1, .trainable = 1};
  free(cfg);
  printf("-- %s\n", grp);
  param_table t;
  param_table_init(&t);
  simplefpn m;
  simplefpn_register(&m, &t, "masa_adapter.0", &sc);
  param_table_alloc(&t);
  load_params(f, grp, &t);
  arena ar;
  arena_init(&ar, (size_t)1 << 24);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  tensor *x = callocCheck(4, sizeof(tensor));
  for (int i = 0; i < 4; i++) x[i] = rd_tensor(f, "%s/x/%d", grp, i);
  simplefpn_acts *a = callocCheck(1, sizeof *a);
  simplefpn_forward(&m, &ctx, x, a);
  check_outputs(f, grp, sc.num_outs, a->out, &TOL_PYRAMID);
  tensor *dy = read_dy(f, grp, sc.num_outs);
  tensor *dx = prefilled_like(x, 4);
  prefill_grads(&t);
  simplefpn_backward(&m, &ctx, a, dy, dx);
  check_input_grads(f, grp, 4, dx, &TOL_PYRAMID);
  check_param_grads(f, grp, &t, &TOL_PYRAMID);
  free(a);
  free_tensors(x, 4);
  free_tensors(dy, sc.num_outs);
  free_tensors(dx, 4);
  arena_free(&ar);
  param_table_free(&t);
}

static void run_fusion(h5file *f, const char *grp, int is_dyhead) {
  int64_t nc;
  float *cfg = rd_cfg(f, grp, &nc);
  int64_t c_in = (int64_t)cfg[1], c_out = (int64_t)cfg[2];
  int blocks = (int)cfg[3], mode = (int)cfg[4], fixup = (int)cfg[5], L = (int)cfg[6];
  free(cfg);
  printf("-- %s\n", grp);
  param_table t;
  param_table_init(&t);
  deform_fusion df;
  dyhead dh;
  if (is_dyhead) {
    dyhead_cfg c = {.c_in = c_in, .c_out = c_out, .gn_groups = 16, .num_blocks = blocks,
                    .offset_mode = (high_offset_mode)mode, .trainable = 1};
    dyhead_register(&dh, &t, "masa_adapter.1", &c);
  } else {
    deform_fusion_cfg c = {.c_in = c_in, .c_out = c_out, .gn_groups = 16, .num_blocks = blocks,
                           .offset_mode = (high_offset_mode)mode, .fix_upsample = fixup,
                           .trainable = 1};
    deform_fusion_register(&df, &t, "masa_adapter.1", &c);
  }
  param_table_alloc(&t);
  load_params(f, grp, &t);
  arena ar;
  arena_init(&ar, (size_t)1 << 26);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  tensor *x = callocCheck((size_t)L, sizeof(tensor));
  for (int i = 0; i < L; i++) x[i] = rd_tensor(f, "%s/x/%d", grp, i);
  tensor *dy = read_dy(f, grp, L);
  tensor *dx = prefilled_like(x, L);
  prefill_grads(&t);
  if (is_dyhead) {
    dyhead_acts *a = callocCheck(1, sizeof *a);
    dyhead_forward(&dh, &ctx, L, x, a);
    check_outputs(f, grp, L, a->out, &TOL_FUSION);
    dyhead_backward(&dh, &ctx, a, dy, dx);
    free(a);
  } else {
    deform_fusion_acts *a = callocCheck(1, sizeof *a);
    deform_fusion_forward(&df, &ctx, L, x, a);
    check_outputs(f, grp, L, a->out, &TOL_FUSION);
    deform_fusion_backward(&df, &ctx, a, dy, dx);
    free(a);
  }
  check_input_grads(f, grp, L, dx, &TOL_FUSION);
  check_param_grads(f, grp, &t, &TOL_FUSION);
  // Inference mode releases temporaries per level: the outputs must not change.
  ctx.training = 0;
  arena_reset(&ar);
  printf("   (inference mode: temporaries released per level)\n");
  if (is_dyhead) {
    dyhead_acts *a = callocCheck(1, sizeof *a);
    dyhead_forward(&dh, &ctx, L, x, a);
    check_outputs(f, grp, L, a->out, &TOL_FUSION);
    free(a);
  } else {
    deform_fusion_acts *a = callocCheck(1, sizeof *a);
    deform_fusion_forward(&df, &ctx, L, x, a);
    check_outputs(f, grp, L, a->out, &TOL_FUSION);
    free(a);
  }
  free_tensors(x, L);
  free_tensors(dy, L);
  free_tensors(dx, L);
  arena_free(&ar);
  param_table_free(&t);
}

// ---------------------------------------------------------------------------------------------
// Full-size key lists: every "key d0,d1,..." line of the oracle attribute is a registered
// parameter of that shape, and the counts agree.

static void check_keys(h5file *f, const char *attr, param_table *t) {
  char *ref = NULL;
  if (h5_read_attr_str(f, attr, &ref) != MASA_OK) {
    fprintf(stderr, "%s\n", masa_errmsg());
    exit(1);
  }
  int lines = 0, bad = 0;
  for (char *line = strtok(ref, "\n"); line; line = strtok(NULL, "\n")) {
    lines++;
    char *sp = strchr(line, ' ');
    if (!sp) {
      bad++;
      continue;
    }
    *sp = 0;
    int idx = param_table_find(t, line);
    int ok = idx >= 0;
    if (ok) {
      const param_entry *e = &t->entries[idx];
      int d = 0;
      for (char *s = sp + 1; *s; d++) {
        long long v = strtoll(s, &s, 10);
        ok &= d < e->ndim && v == e->shape[d];
        if (*s == ',') s++;
      }
      ok &= d == e->ndim;
    }
    if (!ok) {
      if (bad < 5) printf("    %s: '%s' missing or of another shape in the C table\n", attr, line);
      bad++;
    }
  }
  char what[200];
  snprintf(what, sizeof what, "%s: %d official keys == %d registered, all names and shapes", attr,
           lines, t->count);
  check_true(what, bad == 0 && lines == t->count);
  free(ref);
}

static void test_full_keys(h5file *f) {
  printf("-- full-size key lists (masa-spec 9)\n");
  param_table t;
  {
    param_table_init(&t);
    fpn m;
    fpn_cfg c = {.num_ins = 3, .c_in = {256, 512, 1024}, .c_out = 256, .num_outs = 5,
                 .norm = NORM_BN_TRAIN, .trainable = 1};
    fpn_register(&m, &t, "masa_adapter.0", &c);
    check_keys(f, "keys_fpn_gdino", &t);
    param_table_free(&t);
  }
  {
    param_table_init(&t);
    fpn m;
    fpn_cfg c = {.num_ins = 4, .c_in = {256, 512, 1024, 2048}, .c_out = 256, .num_outs = 5,
                 .norm = NORM_BN_TRAIN, .trainable = 1};
    fpn_register(&m, &t, "masa_adapter.0", &c);
    check_keys(f, "keys_fpn_r50", &t);
    param_table_free(&t);
  }
  {
    param_table_init(&t);
    simplefpn m;
    simplefpn_cfg c = {.c_vit = 768, .c_out = 256, .num_outs = 5, .use_residual = 1,
                       .trainable = 1};
    simplefpn_register(&m, &t, "masa_adapter.0", &c);
    check_keys(f, "keys_simplefpn_samb", &t);
    param_table_free(&t);
  }
  {
    param_table_init(&t);
    deform_fusion *m = callocCheck(1, sizeof *m);
    deform_fusion_cfg c = {.c_in = 256, .c_out = 256, .gn_groups = 16, .num_blocks = 3,
                           .trainable = 1};
    deform_fusion_register(m, &t, "masa_adapter.1", &c);
    check_keys(f, "keys_deform_fusion", &t);
    free(m);
    param_table_free(&t);
  }
  {
    param_table_init(&t);
    dyhead *m = callocCheck(1, sizeof *m);
    dyhead_cfg c = {.c_in = 256, .c_out = 256, .gn_groups = 16, .num_blocks = 3, .trainable = 1};
    dyhead_register(m, &t, "masa_adapter.1", &c);
    check_keys(f, "keys_dyhead", &t);
    free(m);
    param_table_free(&t);
  }
}

// ---------------------------------------------------------------------------------------------
// Init functions: bounds, spreads and constants of the official schemes.

static void stats(const float *x, int64_t n, double *mean, double *sd, double *amax) {
  double s = 0, s2 = 0, m = 0;
  for (int64_t i = 0; i < n; i++) {
    s += x[i];
    s2 += (double)x[i] * x[i];
    if (fabs(x[i]) > m) m = fabs(x[i]);
  }
  *mean = s / (double)n;
  *sd = sqrt(fmax(s2 / (double)n - *mean * *mean, 0.0));
  *amax = m;
}

static int all_equal(const param_table *t, int idx, float v) {
  const float *p = param_ptr(t, idx);
  for (int64_t i = 0; i < t->entries[idx].numel; i++)
    if (p[i] != v) return 0;
  return 1;
}

// Uniform(-bound, bound): |x| <= bound and sd within 10% of bound / sqrt(3).
static void check_uniform(const param_table *t, int idx, double bound) {
  double mean, sd, amax;
  stats(param_ptr(t, idx), t->entries[idx].numel, &mean, &sd, &amax);
  char what[300];
  snprintf(what, sizeof what, "init %s ~ U(+-%.4g): max %.4g, sd %.4g", t->entries[idx].name,
           bound, amax, sd);
  check_true(what, amax <= bound && fabs(sd - bound / sqrt(3.0)) < 0.1 * bound / sqrt(3.0));
}

static void check_normal(const param_table *t, int idx, double std) {
  double mean, sd, amax;
  stats(param_ptr(t, idx), t->entries[idx].numel, &mean, &sd, &amax);
  char what[300];
  snprintf(what, sizeof what, "init %s ~ N(0, %.3g^2): sd %.4g, mean %.2g", t->entries[idx].name,
           std, sd, mean);
  check_true(what, fabs(sd - std) < 0.1 * std && fabs(mean) < 0.2 * std);
}

static void check_const(const param_table *t, int idx, float v) {
  char what[300];
  snprintf(what, sizeof what, "init %s == %g", t->entries[idx].name, v);
  check_true(what, all_equal(t, idx, v));
}

static void test_init(void) {
  printf("-- official init\n");
  param_table t;
  param_table_init(&t);
  fpn fp;
  fpn_cfg fc = {.num_ins = 2, .c_in = {64, 128}, .c_out = 32, .num_outs = 3,
                .norm = NORM_BN_TRAIN, .trainable = 1};
  fpn_register(&fp, &t, "fpn", &fc);
  simplefpn sf;
  simplefpn_cfg sc = {.c_vit = 48, .c_out = 32, .num_outs = 5, .use_residual = 1, .trainable = 1};
  simplefpn_register(&sf, &t, "sfpn", &sc);
  deform_fusion *df0 = callocCheck(1, sizeof *df0), *df1 = callocCheck(1, sizeof *df1);
  deform_fusion_cfg dc = {.c_in = 32, .c_out = 32, .gn_groups = 16, .num_blocks = 1,
                          .trainable = 1};
  deform_fusion_register(df0, &t, "df0", &dc);
  deform_fusion_register(df1, &t, "df1", &dc);
  dyhead *dh = callocCheck(1, sizeof *dh);
  dyhead_cfg hc = {.c_in = 32, .c_out = 32, .gn_groups = 16, .num_blocks = 1, .trainable = 1};
  dyhead_register(dh, &t, "dh", &hc);
  param_table_alloc(&t);
  for (int i = 0; i < t.count; i++) init_constant(&t, i, 7.0f);  // everything must be written
  fpn_init(&fp, &t, g_seed);
  simplefpn_init(&sf, &t, g_seed);
  deform_fusion_init(df0, &t, 1, g_seed);
  deform_fusion_init(df1, &t, 0, g_seed);
  dyhead_init(dh, &t, 1, g_seed);
  int untouched = 0;
  for (int i = 0; i < t.count; i++) untouched += all_equal(&t, i, 7.0f);
  check_true("init writes every parameter", untouched == 0);

  for (int i = 0; i < 2; i++) {  // Xavier-uniform convs, zero bias-free BN init
    const conv_module *l = &fp.lateral[i], *o = &fp.out_conv[i];
    check_uniform(&t, l->w, sqrt(6.0 / (double)(fc.c_in[i] + 32)));
    check_uniform(&t, o->w, sqrt(6.0 / (32.0 * 9 + 32.0 * 9)));
    check_const(&t, l->nw, 1.0f);
    check_const(&t, l->nb, 0.0f);
    check_const(&t, l->rm, 0.0f);
    check_const(&t, l->rv, 1.0f);
  }
  check_uniform(&t, sf.fpn.lateral[0].w, sqrt(6.0 / (48.0 + 32.0)));
  check_const(&t, sf.fpn.lateral[0].b, 0.0f);
  check_const(&t, sf.fpn.out_conv[3].b, 0.0f);
  check_uniform(&t, sf.up1a_w, 1.0 / sqrt(48.0 * 4));  // PyTorch ConvTranspose2d default
  check_uniform(&t, sf.up2_b, 1.0 / sqrt(48.0 * 4));
  check_const(&t, sf.ln_w, 1.0f);
  check_const(&t, sf.ln_b, 0.0f);

  const deform_fusion_block *b0 = &df0->blocks[0], *b1 = &df1->blocks[0];
  check_const(&t, b0->off_w, 0.0f);  // zero_init_offset
  check_const(&t, b0->off_b, 0.0f);
  check_normal(&t, b1->off_w, 0.01);  // normal_init when not zeroed
  check_const(&t, b1->off_b, 0.0f);
  check_uniform(&t, b0->mid.w, 1.0 / sqrt(32.0 * 9));  // mmcv DCN default
  check_uniform(&t, b0->low.w, 1.0 / sqrt(32.0 * 9));
  check_const(&t, b0->high.nw, 1.0f);
  check_const(&t, b0->high.nb, 0.0f);

  const dyhead_block *h = &dh->blocks[0];
  check_const(&t, h->off_w, 0.0f);
  check_uniform(&t, h->high.w, 1.0 / sqrt(32.0 * 9));
  check_normal(&t, h->ta_w1, 0.01);
  check_normal(&t, h->ta_w2, 0.01);
  check_const(&t, h->ta_b2, 0.0f);
  check_const(&t, h->sa_b, 0.0f);
  {
    double mean, sd, amax;  // 32 values only: a loose spread check
    stats(param_ptr(&t, h->sa_w), 32, &mean, &sd, &amax);
    check_true("init scale_attn_module.1.weight ~ N(0, 0.01^2) (32 values)",
               sd > 0.005 && sd < 0.016 && amax < 0.05);
  }
  free(df0);
  free(df1);
  free(dh);
  param_table_free(&t);
}

// ---------------------------------------------------------------------------------------------
// Finite differences through two blocks of DeformFusion / DyHead on a tiny configuration:
// n 1, 16 channels, GN 4 groups, levels 8x6, 4x3, 2x2, random non-official weights chosen so that
// no kink is crossed by the perturbations:
// - offset-conv biases put every offset at k + 0.5 +- 0.15 and the offset-conv weights are tiny
//   (std 1e-3: +-0.04 more), so sample coordinates stay >= ~0.3 away from integers (the kinks of
//   bilinear sampling) even when a whole weight tensor moves by +-eps;
// - DyHead: scale attention z ~ 1 (ReLU open, HSigmoid unsaturated); DyReLU hidden units ~ 1
//   (ReLU open); DyReLU's HSigmoid inputs at +-1.8 +- 0.4 (unsaturated), giving a1 = 0.4,
//   b1 = 0.3, a2 = 0.6, b2 = -0.3: u1 - u2 = 0.6 - 0.2 y, so the first branch wins unless y > 3
//   (never here; both branches are covered by the oracle cases above).
// Loss = sum_l <out_l, r_l> in double over a float32 forward. Step 1e-3: the random-direction
// check moves every coordinate at once (a step of norm eps * sqrt(n), up to 0.1 here), whose
// curvature error grows as eps^2 (measured: 5e-3 gives up to 5%, 1e-3 below 0.5%); float32
// rounding of the loss (~1e-6..1e-5) gives up to ~5e-3 in a single-coordinate quotient.
// atol 1e-2 (per coordinate; x sqrt(n) for the direction), rtol 2e-2.

#define FD_EPS 1e-3f
#define FD_EPS_X 1e-2f  // inputs are N(0, 1): a 1e-2 step is small for them, and 10x less noisy
#define FD_ATOL 1e-2
#define FD_RTOL 2e-2

typedef struct {
  int is_dyhead;
  deform_fusion *df;
  dyhead *dh;
  model_ctx *ctx;
  int L;
  tensor *x, *r;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *c = p;
  arena_mark_t mk = arena_mark(c->ctx->arena);
  int tr = c->ctx->training;
  c->ctx->training = 0;
  double s = 0;
  if (c->is_dyhead) {
    dyhead_acts *a = callocCheck(1, sizeof *a);
    dyhead_forward(c->dh, c->ctx, c->L, c->x, a);
    for (int l = 0; l < c->L; l++) s += dot_f64(a->out[l].data, c->r[l].data, tensor_numel(&c->r[l]));
    free(a);
  } else {
    deform_fusion_acts *a = callocCheck(1, sizeof *a);
    deform_fusion_forward(c->df, c->ctx, c->L, c->x, a);
    for (int l = 0; l < c->L; l++) s += dot_f64(a->out[l].data, c->r[l].data, tensor_numel(&c->r[l]));
    free(a);
  }
  c->ctx->training = tr;
  arena_rewind(c->ctx->arena, mk);
  return s;
}

static void fill_normal(float *p, int64_t n, float mean, float sd, uint64_t stream) {
  rng_fill_normal(p, n, mean, sd, g_seed, stream);
}

// Offset channels: k + 0.5 + U(-0.15, 0.15), k in {-1, 0, 1}; mask channels N(0, 1).
static void fd_offset_bias(param_table *t, int idx, int n_off, uint64_t stream) {
  float *b = param_ptr(t, idx);
  for (int64_t i = 0; i < t->entries[idx].numel; i++) {
    if (i < n_off) {
      int k = (int)rng_below(g_seed, stream, (uint64_t)i, 3) - 1;
      b[i] = (float)k + 0.5f + 0.3f * (rng_uniform(g_seed, stream + 1, (uint64_t)i) - 0.5f);
    } else {
      b[i] = rng_normal(g_seed, stream + 2, (uint64_t)i);
    }
  }
}

static void fd_check_param(fd_ctx *c, param_table *t, const char *suffix, int block) {
  char key[200];
  snprintf(key, sizeof key, "masa_adapter.1.dyhead_blocks.%d.%s", block, suffix);
  int idx = param_table_find(t, key);
  masa_assert(idx >= 0);
  char what[300];
  snprintf(what, sizeof what, "fd %s %s", c->is_dyhead ? "dyhead" : "deform_fusion", key);
  check_grad_fd(what, param_ptr(t, idx), t->entries[idx].numel, param_grad_ptr(t, idx), fd_loss,
                c, 12, FD_EPS, FD_ATOL, FD_RTOL, g_seed + (uint64_t)idx, NULL);
}

static void test_fd(int is_dyhead, high_offset_mode mode, int fix_upsample) {
  printf("-- finite differences, %s, mode %d%s\n", is_dyhead ? "DyHead" : "DeformFusion",
         (int)mode, fix_upsample ? ", fix_upsample" : "");
  const int L = 3;
  const int64_t n = 1, c = 16, groups = 4, sizes[3][2] = {{8, 6}, {4, 3}, {2, 2}};
  param_table t;
  param_table_init(&t);
  fd_ctx fc = {.is_dyhead = is_dyhead, .L = L};
  if (is_dyhead) {
    fc.dh = callocCheck(1, sizeof *fc.dh);
    dyhead_cfg hc = {.c_in = c, .c_out = c, .gn_groups = groups, .num_blocks = 2,
                     .offset_mode = mode, .trainable = 1};
    dyhead_register(fc.dh, &t, "masa_adapter.1", &hc);
  } else {
    fc.df = callocCheck(1, sizeof *fc.df);
    deform_fusion_cfg dc = {.c_in = c, .c_out = c, .gn_groups = groups, .num_blocks = 2,
                            .offset_mode = mode, .fix_upsample = fix_upsample, .trainable = 1};
    deform_fusion_register(fc.df, &t, "masa_adapter.1", &dc);
  }
  param_table_alloc(&t);
  if (is_dyhead)
    dyhead_init(fc.dh, &t, 0, g_seed);
  else
    deform_fusion_init(fc.df, &t, 0, g_seed);
  // Non-official values so every path carries signal.
  for (int i = 0; i < t.count; i++) {
    const char *nm = t.entries[i].name;
    float *p = param_ptr(&t, i);
    int64_t k = t.entries[i].numel;
    uint64_t s = 0x500 + (uint64_t)i * 8;
    if (strstr(nm, "spatial_conv_offset.bias")) {
      fd_offset_bias(&t, i, is_dyhead ? 18 : 54, s);
    } else if (strstr(nm, "spatial_conv_offset.weight")) {
      fill_normal(p, k, 0.0f, 1e-3f, s);
    } else if (strstr(nm, ".norm.weight")) {
      fill_normal(p, k, 1.0f, 0.2f, s);
    } else if (strstr(nm, ".norm.bias")) {
      fill_normal(p, k, 0.0f, 0.2f, s);
    } else if (strstr(nm, "scale_attn_module.1.weight")) {
      fill_normal(p, k, 0.0f, 0.5f, s);
    } else if (strstr(nm, "scale_attn_module.1.bias")) {
      p[0] = 1.0f;
    } else if (strstr(nm, "task_attn_module.conv1.conv.weight")) {
      fill_normal(p, k, 0.0f, 0.3f, s);
    } else if (strstr(nm, "task_attn_module.conv1.conv.bias")) {
      fill_normal(p, k, 1.0f, 0.2f, s);  // DyReLU's hidden ReLU stays open
    } else if (strstr(nm, "task_attn_module.conv2.conv.weight")) {
      fill_normal(p, k, 0.0f, 0.1f, s);
    } else if (strstr(nm, "task_attn_module.conv2.conv.bias")) {
      // z for (a1, b1, a2, b2) = (-1.8, 1.8, 1.8, -1.8): a1 = 0.4, b1 = 0.3, a2 = 0.6, b2 = -0.3.
      const float zc[4] = {-1.8f, 1.8f, 1.8f, -1.8f};
      fill_normal(p, k, 0.0f, 0.1f, s);
      for (int64_t j = 0; j < k; j++) p[j] += zc[j / (k / 4)];
    }
  }
  arena ar;
  arena_init(&ar, (size_t)1 << 24);
  model_ctx ctx = {.params = &t, .arena = &ar, .training = 1};
  fc.ctx = &ctx;
  tensor x[3], r[3], dx[3];
  for (int l = 0; l < L; l++) {
    x[l] = tensor_alloc4(n, c, sizes[l][0], sizes[l][1]);
    r[l] = tensor_alloc4(n, c, sizes[l][0], sizes[l][1]);
    dx[l] = tensor_alloc4(n, c, sizes[l][0], sizes[l][1]);
    fill_normal(x[l].data, tensor_numel(&x[l]), 0.0f, 1.0f, 0x700 + (uint64_t)l);
    fill_normal(r[l].data, tensor_numel(&r[l]), 0.0f, 1.0f, 0x710 + (uint64_t)l);
  }
  fc.x = x;
  fc.r = r;
  param_table_zero_grads(&t);
  if (is_dyhead) {
    dyhead_acts *a = callocCheck(1, sizeof *a);
    dyhead_forward(fc.dh, &ctx, L, x, a);
    dyhead_backward(fc.dh, &ctx, a, r, dx);
    free(a);
  } else {
    deform_fusion_acts *a = callocCheck(1, sizeof *a);
    deform_fusion_forward(fc.df, &ctx, L, x, a);
    deform_fusion_backward(fc.df, &ctx, a, r, dx);
    free(a);
  }
  arena_reset(&ar);
  for (int l = 0; l < L; l++) {
    char what[100];
    snprintf(what, sizeof what, "fd %s dx[%d]", is_dyhead ? "dyhead" : "deform_fusion", l);
    check_grad_fd(what, x[l].data, tensor_numel(&x[l]), dx[l].data, fd_loss, &fc, 12, FD_EPS_X,
                  FD_ATOL, FD_RTOL, g_seed + 0x900 + (uint64_t)l, NULL);
  }
  fd_check_param(&fc, &t, "spatial_conv_offset.weight", 0);
  fd_check_param(&fc, &t, "spatial_conv_offset.bias", 1);
  fd_check_param(&fc, &t, "spatial_conv_mid.conv.weight", 1);
  fd_check_param(&fc, &t, "spatial_conv_low.conv.weight", 0);
  fd_check_param(&fc, &t, "spatial_conv_high.conv.weight", 0);
  fd_check_param(&fc, &t, "spatial_conv_high.norm.weight", 1);
  fd_check_param(&fc, &t, "spatial_conv_low.norm.bias", 0);
  if (is_dyhead) {
    fd_check_param(&fc, &t, "scale_attn_module.1.weight", 0);
    fd_check_param(&fc, &t, "scale_attn_module.1.bias", 1);
    fd_check_param(&fc, &t, "task_attn_module.conv1.conv.weight", 0);
    fd_check_param(&fc, &t, "task_attn_module.conv2.conv.weight", 1);
    fd_check_param(&fc, &t, "task_attn_module.conv2.conv.bias", 0);
  }
  for (int l = 0; l < L; l++) {
    tensor_free(&x[l]);
    tensor_free(&r[l]);
    tensor_free(&dx[l]);
  }
  free(fc.df);
  free(fc.dh);
  arena_free(&ar);
  param_table_free(&t);
}

int main(int argc, char **argv) {
  g_seed = test_begin("adapter", 4242);
  if (argc != 2) {
    fprintf(stderr, "usage: test_adapter ORACLE.h5\n");
    return 1;
  }
  h5file *f = oracle_open(argv[1]);
  test_full_keys(f);
  test_init();
  run_fpn(f, "fpn_bn_train");
  run_fpn(f, "fpn_bn_frozen");
  run_fpn(f, "fpn_none");
  run_simplefpn(f, "simplefpn");
  run_fusion(f, "df_reinterpret", 0);
  run_fusion(f, "df_zero_offset", 0);
  run_fusion(f, "df_fix_upsample", 0);
  run_fusion(f, "dyhead_reinterpret", 1);
  run_fusion(f, "dyhead_crop", 1);
  run_fusion(f, "dyhead_crop_mmcv", 1);
  run_fusion(f, "dyhead_zero_offset", 1);
  h5_close(f);
  test_fd(0, HIGH_OFFSET_REINTERPRET, 0);
  test_fd(0, HIGH_OFFSET_REINTERPRET, 1);
  test_fd(1, HIGH_OFFSET_REINTERPRET, 0);
  test_fd(1, HIGH_OFFSET_CROP, 0);
  return test_end();
}
