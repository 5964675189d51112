#include "model/module.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

tensor ctx_tensor(model_ctx *ctx, int ndim, const int64_t *shape) {
  tensor t = {0};
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
  t.data = arena_floats(ctx->arena, shape_numel(ndim, shape));
  return t;
}

tensor ctx_tensor4(model_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w) {
  int64_t s[4] = {n, c, h, w};
  return ctx_tensor(ctx, 4, s);
}

tensor ctx_zeros_like(model_ctx *ctx, const tensor *t) {
  tensor z = *t;
  z.owns = 0;
  z.data = arena_zeros(ctx->arena, tensor_numel(t));
  return z;
}

int module_param(param_table *t, const char *prefix, const char *name, int ndim,
                 const int64_t *shape, int trainable) {
  char key[sizeof t->entries[0].name];
  int n = snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", name);
  masa_assert(n > 0 && (size_t)n < sizeof key);
  return param_table_add(t, key, ndim, shape, trainable);
}

static void fans(const param_entry *e, double *fan_in, double *fan_out) {
  double recept = 1;
  for (int i = 2; i < e->ndim; i++) recept *= (double)e->shape[i];
  *fan_in = (e->ndim >= 2 ? (double)e->shape[1] : (double)e->shape[0]) * recept;
  *fan_out = (double)e->shape[0] * recept;
}

void init_constant(param_table *t, int idx, float v) {
  float *p = param_ptr(t, idx);
  for (int64_t i = 0; i < t->entries[idx].numel; i++) p[i] = v;
}

void init_normal(param_table *t, int idx, float mean, float std, uint64_t seed) {
  rng_fill_normal(param_ptr(t, idx), t->entries[idx].numel, mean, std, seed, 0x1000 + (uint64_t)idx);
}

void init_uniform(param_table *t, int idx, float lo, float hi, uint64_t seed) {
  rng_fill_uniform(param_ptr(t, idx), t->entries[idx].numel, lo, hi, seed, 0x1000 + (uint64_t)idx);
}

void init_xavier_uniform(param_table *t, int idx, float gain, uint64_t seed) {
  double fi, fo;
  fans(&t->entries[idx], &fi, &fo);
  float a = (float)(gain * sqrt(6.0 / (fi + fo)));
  init_uniform(t, idx, -a, a, seed);
}

void init_kaiming_normal_fan_out(param_table *t, int idx, uint64_t seed) {
  double fi, fo;
  fans(&t->entries[idx], &fi, &fo);
  init_normal(t, idx, 0.0f, (float)sqrt(2.0 / fo), seed);
}

void init_torch_default(param_table *t, int w_idx, int b_idx, uint64_t seed) {
  double fi, fo;
  fans(&t->entries[w_idx], &fi, &fo);
  // kaiming_uniform with a = sqrt(5): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in).
  float bound = (float)(1.0 / sqrt(fi));
  init_uniform(t, w_idx, -bound, bound, seed);
  if (b_idx >= 0) init_uniform(t, b_idx, -bound, bound, seed);
}
