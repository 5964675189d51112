// Guard-device parity of the adapter modules (model/fpn, simplefpn, deform_fusion, dyhead): each
// module runs forward and backward on the cpu device and on the guard device (core/device.h)
// with the same random parameters, inputs and output gradients, and the outputs, the input
// gradients, the parameter gradients and the parameters themselves (BN running statistics move
// in training) must be bit-identical: the guard device computes with the same CPU twins, so any
// difference, or a guard fault, means host code touched device memory or a copy is missing.
// Gradient buffers start at PREFILL (backward must accumulate). Small widths and odd map sizes;
// the configurations MASA uses: FPN as the R50 adapter (4 inputs, 5 outputs) with BN train /
// frozen / none, SimpleFPN (SAM), DeformFusion in every high-branch offset mode with and
// without fix_upsample, DyHead in every mode, and an inference pass (training 0: per-level
// temporaries rewound) of each fusion module.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "guard_util.h"
#include "harness.h"
#include "model/deform_fusion.h"
#include "model/dyhead.h"
#include "model/fpn.h"
#include "model/simplefpn.h"

#define PREFILL 0.25f
#define MAXL 8

typedef enum { MOD_FPN, MOD_SIMPLEFPN, MOD_DEFORM, MOD_DYHEAD } mod_kind;

typedef struct {
  mod_kind kind;
  fpn m_fpn;
  simplefpn m_sfpn;
  deform_fusion m_df;
  dyhead m_dh;
  int n_in, n_out;
} module_any;

// Per-run state: acts and the tensors a forward / backward produced.
typedef struct {
  fpn_acts fa;
  simplefpn_acts sa;
  deform_fusion_acts da;
  dyhead_acts ha;
  tensor out[MAXL];
} run_acts;

static void forward(const module_any *m, model_ctx *ctx, tensor *x, run_acts *r) {
  switch (m->kind) {
    case MOD_FPN:
      fpn_forward(&m->m_fpn, ctx, x, &r->fa);
      for (int k = 0; k < m->n_out; k++) r->out[k] = r->fa.out[k];
      break;
    case MOD_SIMPLEFPN:
      simplefpn_forward(&m->m_sfpn, ctx, x, &r->sa);
      for (int k = 0; k < m->n_out; k++) r->out[k] = r->sa.out[k];
      break;
    case MOD_DEFORM:
      deform_fusion_forward(&m->m_df, ctx, m->n_in, x, &r->da);
      for (int k = 0; k < m->n_out; k++) r->out[k] = r->da.out[k];
      break;
    case MOD_DYHEAD:
      dyhead_forward(&m->m_dh, ctx, m->n_in, x, &r->ha);
      for (int k = 0; k < m->n_out; k++) r->out[k] = r->ha.out[k];
      break;
  }
}

static void backward(const module_any *m, model_ctx *ctx, run_acts *r, const tensor *dout,
                     tensor *dx) {
  switch (m->kind) {
    case MOD_FPN: fpn_backward(&m->m_fpn, ctx, &r->fa, dout, dx); break;
    case MOD_SIMPLEFPN: simplefpn_backward(&m->m_sfpn, ctx, &r->sa, dout, dx); break;
    case MOD_DEFORM: deform_fusion_backward(&m->m_df, ctx, &r->da, dout, dx); break;
    case MOD_DYHEAD: dyhead_backward(&m->m_dh, ctx, &r->ha, dout, dx); break;
  }
}

// Runs one case: m registered into t (allocated, initialised). x: n_in host inputs.
static void run_case(const char *name, const module_any *m, param_table *t, const tensor *x,
                     int training, int with_dx, uint64_t seed) {
  // Perturb every parameter (offset convs start at zero, norms at 1 / 0) and pre-fill grads.
  float *noise = mallocCheck(t->total * sizeof(float));
  rng_fill_uniform(noise, (int64_t)t->total, -0.1f, 0.1f, seed, 21);
  for (size_t i = 0; i < t->total; i++) t->params[i] += noise[i];
  free(noise);
  for (size_t i = 0; i < t->total; i++) t->grads[i] = PREFILL;

  param_table tg;
  param_table_clone_layout(&tg, t, &guard_dev);
  param_table_copy_roles(&tg, t);

  // cpu reference
  arena ar;
  arena_init(&ar, (size_t)4 << 20);
  model_ctx ctx = {.params = t, .arena = &ar, .training = training};
  run_acts *r = calloc(1, sizeof *r);
  tensor xin[MAXL];
  for (int i = 0; i < m->n_in; i++) xin[i] = x[i], xin[i].owns = 0;
  forward(m, &ctx, xin, r);
  tensor dout[MAXL], dx[MAXL];
  if (training) {
    for (int k = 0; k < m->n_out; k++) {
      dout[k] = ctx_tensor(&ctx, 4, r->out[k].shape);
      rng_fill_uniform(dout[k].data, tensor_numel(&dout[k]), -1.0f, 1.0f, seed, 100 + k);
    }
    for (int i = 0; i < m->n_in; i++) {
      dx[i] = ctx_tensor(&ctx, 4, x[i].shape);
      for (int64_t j = 0; j < tensor_numel(&dx[i]); j++) dx[i].data[j] = PREFILL;
    }
    backward(m, &ctx, r, dout, with_dx ? dx : NULL);
  }

  // guard device
  arena ag, host;
  arena_init_on(&ag, (size_t)4 << 20, &guard_dev);
  arena_init(&host, (size_t)1 << 20);
  model_ctx gctx = {.params = &tg, .arena = &ag, .training = training, .host = &host};
  run_acts *rg = calloc(1, sizeof *rg);
  tensor xg[MAXL], doutg[MAXL], dxg[MAXL];
  for (int i = 0; i < m->n_in; i++) xg[i] = guard_put(&ag, &x[i]);
  forward(m, &gctx, xg, rg);
  if (training) {
    for (int k = 0; k < m->n_out; k++) doutg[k] = guard_put(&ag, &dout[k]);
    for (int i = 0; i < m->n_in; i++) dxg[i] = guard_put(&ag, &dx[i]);
    // dx on the cpu already holds the gradient: re-prefill the guard copies.
    for (int i = 0; i < m->n_in; i++)
      ew_fill(&guard_dev, tensor_numel(&dx[i]), PREFILL, dxg[i].data);
    backward(m, &gctx, rg, doutg, with_dx ? dxg : NULL);
  }

  char what[200];
  for (int k = 0; k < m->n_out; k++) {
    snprintf(what, sizeof what, "%s: output %d", name, k);
    check_true(what, tensor_same_shape(&r->out[k], &rg->out[k]));
    guard_check_same(what, &guard_dev, rg->out[k].data, r->out[k].data, tensor_numel(&r->out[k]));
  }
  if (training && with_dx)
    for (int i = 0; i < m->n_in; i++) {
      snprintf(what, sizeof what, "%s: input gradient %d", name, i);
      guard_check_same(what, &guard_dev, dxg[i].data, dx[i].data, tensor_numel(&dx[i]));
    }
  snprintf(what, sizeof what, "%s: parameters (BN running statistics)", name);
  guard_check_same(what, &guard_dev, tg.params, t->params, (int64_t)t->total);
  if (training) {
    snprintf(what, sizeof what, "%s: parameter gradients (%zu)", name, t->total);
    guard_check_same(what, &guard_dev, tg.grads, t->grads, (int64_t)t->total);
  }

  free(r), free(rg);
  arena_free(&ag);
  arena_free(&host);
  param_table_free(&tg);
  snprintf(what, sizeof what, "%s: guard memory released", name);
  check_true(what, dev_guard_bytes() == 0);
  arena_free(&ar);
}

// n_in random host maps: (n, c[i], h[i], w[i]).
static void make_inputs(tensor *x, int n_in, int64_t n, const int64_t *c, const int64_t *h,
                        const int64_t *w, uint64_t seed) {
  for (int i = 0; i < n_in; i++) {
    x[i] = tensor_alloc4(n, c[i], h[i], w[i]);
    rng_fill_uniform(x[i].data, tensor_numel(&x[i]), -1.0f, 1.0f, seed, 50 + i);
  }
}

static void free_inputs(tensor *x, int n_in) {
  for (int i = 0; i < n_in; i++) tensor_free(&x[i]);
}

static void test_fpn(norm_kind norm, const char *name, int with_dx, uint64_t seed) {
  module_any *m = calloc(1, sizeof *m);
  m->kind = MOD_FPN, m->n_in = 4, m->n_out = 5;
  fpn_cfg c = {.num_ins = 4, .c_in = {6, 10, 12, 16}, .c_out = 8, .num_outs = 5, .norm = norm,
               .trainable = 1};
  param_table t;
  param_table_init(&t);
  fpn_register(&m->m_fpn, &t, "masa_adapter.0", &c);
  param_table_alloc(&t);
  fpn_init(&m->m_fpn, &t, seed);
  // R50 strides 4..32 of a 52 x 42 image: 13 x 11, 7 x 6, 4 x 3, 2 x 2.
  const int64_t h[4] = {13, 7, 4, 2}, w[4] = {11, 6, 3, 2};
  tensor x[4];
  make_inputs(x, 4, 2, c.c_in, h, w, seed);
  run_case(name, m, &t, x, 1, with_dx, seed);
  free_inputs(x, 4);
  param_table_free(&t);
  free(m);
}

static void test_simplefpn(uint64_t seed) {
  module_any *m = calloc(1, sizeof *m);
  m->kind = MOD_SIMPLEFPN, m->n_in = 4, m->n_out = 5;
  simplefpn_cfg c = {.c_vit = 12, .c_out = 8, .num_outs = 5, .use_residual = 1, .trainable = 1};
  param_table t;
  param_table_init(&t);
  simplefpn_register(&m->m_sfpn, &t, "masa_adapter.0", &c);
  param_table_alloc(&t);
  simplefpn_init(&m->m_sfpn, &t, seed);
  const int64_t cc[4] = {12, 12, 12, 12}, h[4] = {5, 5, 5, 5}, w[4] = {7, 7, 7, 7};
  tensor x[4];
  make_inputs(x, 4, 2, cc, h, w, seed);
  run_case("simplefpn", m, &t, x, 1, 1, seed);
  free_inputs(x, 4);
  param_table_free(&t);
  free(m);
}

// Five levels, each ceil(previous / 2), non-square.
static const int64_t fus_h[5] = {13, 7, 4, 2, 1}, fus_w[5] = {10, 5, 3, 2, 1};

static void test_fusion(int is_dyhead, high_offset_mode mode, int fix_upsample, int training,
                        uint64_t seed) {
  module_any *m = calloc(1, sizeof *m);
  m->kind = is_dyhead ? MOD_DYHEAD : MOD_DEFORM, m->n_in = 5, m->n_out = 5;
  param_table t;
  param_table_init(&t);
  const int64_t ch = 8;
  if (is_dyhead) {
    dyhead_cfg c = {.c_in = ch, .c_out = ch, .gn_groups = 4, .num_blocks = 2,
                    .offset_mode = mode, .trainable = 1};
    dyhead_register(&m->m_dh, &t, "masa_adapter.1", &c);
    param_table_alloc(&t);
    dyhead_init(&m->m_dh, &t, 0, seed);
  } else {
    deform_fusion_cfg c = {.c_in = ch, .c_out = ch, .gn_groups = 4, .num_blocks = 2,
                           .offset_mode = mode, .fix_upsample = fix_upsample, .trainable = 1};
    deform_fusion_register(&m->m_df, &t, "masa_adapter.1", &c);
    param_table_alloc(&t);
    deform_fusion_init(&m->m_df, &t, 0, seed);
  }
  const int64_t cc[5] = {ch, ch, ch, ch, ch};
  tensor x[5];
  make_inputs(x, 5, 2, cc, fus_h, fus_w, seed);
  static const char *const modes[] = {"reinterpret", "crop", "crop_mmcv"};
  char name[120];
  snprintf(name, sizeof name, "%s %s%s%s", is_dyhead ? "dyhead" : "deform_fusion", modes[mode],
           fix_upsample ? " fix_upsample" : "", training ? "" : " (inference)");
  run_case(name, m, &t, x, training, 1, seed);
  free_inputs(x, 5);
  param_table_free(&t);
  free(m);
}

int main(void) {
  uint64_t seed = test_begin("guard_adapter", 20240612);
  test_fpn(NORM_BN_TRAIN, "fpn bn_train", 1, seed);
  test_fpn(NORM_BN_FROZEN, "fpn bn_frozen", 1, seed);
  test_fpn(NORM_NONE, "fpn none", 1, seed);
  test_fpn(NORM_BN_TRAIN, "fpn bn_train (no input gradient)", 0, seed);
  test_simplefpn(seed);
  for (int mode = 0; mode < 3; mode++) test_fusion(0, (high_offset_mode)mode, 0, 1, seed);
  test_fusion(0, HIGH_OFFSET_REINTERPRET, 1, 1, seed);
  test_fusion(0, HIGH_OFFSET_REINTERPRET, 0, 0, seed);
  for (int mode = 0; mode < 3; mode++) test_fusion(1, (high_offset_mode)mode, 0, 1, seed);
  test_fusion(1, HIGH_OFFSET_REINTERPRET, 0, 0, seed);
  return test_end();
}
