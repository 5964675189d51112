#include "model/module.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"

arena *ctx_host(const model_ctx *ctx) {
  if (ctx->host) return ctx->host;
  masa_assert(ctx->arena->dev.kind == DEV_CPU);  // a device arena needs a host scratch arena
  return ctx->arena;
}

tensor ctx_host_view(model_ctx *ctx, const tensor *t) {
  if (dev_is_host(ctx_dev(ctx))) return *t;
  tensor h = *t;
  h.owns = 0;
  int64_t n = tensor_numel(t);
  h.data = arena_floats(ctx_host(ctx), n);
  dev_download(ctx_dev(ctx), h.data, t->data, (size_t)n * sizeof(float));
  return h;
}

float *ctx_upload(model_ctx *ctx, float *host, int64_t n) {
  if (dev_is_host(ctx_dev(ctx))) return host;
  float *d = arena_floats(ctx->arena, n);
  dev_upload(ctx_dev(ctx), d, host, (size_t)n * sizeof(float));
  return d;
}

int model_runner_open(model_runner *r, param_table *t, const char *device_name, const config *cfg) {
  memset(r, 0, sizeof *r);
  if (device_parse(device_name ? device_name : "cpu", &r->dev) != MASA_OK) return MASA_ERR;
  device_activate(&r->dev);
  if (cfg && device_apply_config(&r->dev, cfg) != MASA_OK) return MASA_ERR;
  param_table_to_device(t, &r->dev);
  arena_init_on(&r->ar, 0, &r->dev);
  arena_init(&r->host, (size_t)1 << 20);
  return MASA_OK;
}

void model_runner_begin(model_runner *r, param_table *t, model_ctx *ctx) {
  arena_reset(&r->ar);
  arena_reset(&r->host);
  memset(ctx, 0, sizeof *ctx);
  ctx->params = t;
  ctx->arena = &r->ar;
  ctx->host = dev_is_host(&r->dev) ? NULL : &r->host;
}

void model_runner_close(model_runner *r) {
  arena_free(&r->ar);
  arena_free(&r->host);
}

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
