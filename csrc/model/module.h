// How model code is written (every module in csrc/model follows this):
// - A module is a plain struct holding its configuration and the indices of its parameters in
//   the model's param_table (core/tensor.h). `xxx_register(m, table, prefix, ...)` adds its
//   parameters under their official MASA state_dict keys (prefix + "." + name) and records the
//   indices. Buffers that PyTorch keeps in the state_dict (BN running stats) are registered as
//   non-trainable entries. Initialisation (`xxx_init`) follows the official init where one is
//   given (masa-spec), using the counter RNG keyed by the parameter index, so it is
//   reproducible and independent of registration order elsewhere.
// - `xxx_forward(m, ctx, inputs..., outputs..., acts)` allocates its outputs and everything its
//   backward needs from ctx->arena and records them in its own `xxx_acts` struct.
// - `xxx_backward(m, ctx, acts, d_outputs..., d_inputs...)` ACCUMULATES parameter gradients into
//   ctx->params->grads (frozen parameters get none) and input gradients into d_inputs (which may
//   be NULL: not needed, e.g. a frozen backbone's input).
// - Activations are tensors in NCHW; a module never frees anything (the arena is reset per step).
// - Inference-only forwards (ctx->training == 0) may skip saving activations.
// - Device: activations and parameters live on ctx->arena's device (core/device.h). Module code
//   never dereferences them on the host: it calls the dispatching ops (ops/dispatch.h) with
//   ctx_dev(ctx), and moves data with dev_* copies. Host-side scratch (indices, small vectors
//   computed on the host) comes from ctx_host(ctx). The guard device proves this in the tests.
#ifndef MASA_MODULE_H
#define MASA_MODULE_H

#include "core/arena.h"
#include "core/tensor.h"
#include "ops/dispatch.h"
#include "ops/norm.h"

typedef struct {
  param_table *params;
  arena *arena;
  int training;               // 1: save activations for backward; BN layers that train use batch stats
  bn_allreduce_fn bn_sync;    // cross-rank sum for synchronised BN (NULL: single process)
  void *bn_sync_ctx;
  arena *host;                // host scratch; NULL: use `arena` (valid only when it is on the cpu)
} model_ctx;

// The device activations and parameters live on.
static inline const device *ctx_dev(const model_ctx *ctx) { return &ctx->arena->dev; }
// Host scratch arena (reset with the step's arena).
arena *ctx_host(const model_ctx *ctx);
// Host access to a device tensor: the tensor itself on the cpu, else a copy downloaded into the
// host arena (for the small results the host needs: RPN maps, head outputs, embeddings).
tensor ctx_host_view(model_ctx *ctx, const tensor *t);
// Device copy of n host floats in ctx's arena (the host pointer itself on the cpu).
float *ctx_upload(model_ctx *ctx, float *host, int64_t n);

// Inference on a device (embed, track, detect): the weights moved there once, an activation
// arena on the device and a host scratch arena.
typedef struct {
  device dev;
  arena ar, host;
} model_runner;
// Parses `device_name` (NULL: cpu), makes it current, applies cfg's device.* keys (cfg may be
// NULL: defaults) and moves t there. MASA_ERR naming the device or key when not available.
int model_runner_open(model_runner *r, param_table *t, const char *device_name, const config *cfg);
// Resets both arenas and fills ctx (inference mode) for one pass.
void model_runner_begin(model_runner *r, param_table *t, model_ctx *ctx);
void model_runner_close(model_runner *r);

// Allocates a tensor from the arena (uninitialised / zeroed).
tensor ctx_tensor(model_ctx *ctx, int ndim, const int64_t *shape);
tensor ctx_tensor4(model_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w);
tensor ctx_zeros_like(model_ctx *ctx, const tensor *t);

// Registers "<prefix>.<name>" and returns its index.
int module_param(param_table *t, const char *prefix, const char *name, int ndim,
                 const int64_t *shape, int trainable);

// Initialisers (seeded by (seed, parameter index)): PyTorch/mmcv conventions.
void init_constant(param_table *t, int idx, float v);
void init_normal(param_table *t, int idx, float mean, float std, uint64_t seed);
void init_uniform(param_table *t, int idx, float lo, float hi, uint64_t seed);
// fan_in / fan_out from the shape (out, in, k...), as torch.nn.init does.
void init_xavier_uniform(param_table *t, int idx, float gain, uint64_t seed);
void init_kaiming_normal_fan_out(param_table *t, int idx, uint64_t seed);  // mmcv ConvModule, relu
// PyTorch's default Conv2d/Linear init: kaiming_uniform(a=sqrt(5)) weight, bias U(-1/sqrt(fan_in), ..).
void init_torch_default(param_table *t, int w_idx, int b_idx, uint64_t seed);

#endif
