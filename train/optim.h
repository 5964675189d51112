// Optimizers over a param_table's trainable prefix: SGD with momentum (torch.optim.SGD, the
// official recipe: lr 0.08, momentum 0.9, weight_decay 1e-4, dampening 0, no nesterov) and AdamW
// (torch.optim.AdamW: decoupled decay, bias correction, amsgrad off), gradient clipping as
// torch.nn.utils.clip_grad_norm_ (max_norm 35, L2) and a guard against non-finite steps.
//
// Buffers: SGD keeps its momentum in table->moment1; AdamW keeps exp_avg in moment1 and
// exp_avg_sq in moment2 (both indexed by entry offset, trainable entries only).
//
// Weight decay (masa-spec §6): the official optim_wrapper has no paramwise_cfg, so mmengine's
// DefaultOptimWrapperConstructor applies weight_decay to EVERY trainable parameter, biases and
// norm scales included. That is the default here. optim.no_decay_norm_bias = true exempts names
// ending in ".bias" and every 1-D parameter (the BN / GN / LN scales; all conv and linear weights
// of MASA have 2 or more dims).
//
// Differences from PyTorch, on purpose: a trainable parameter always takes part (torch skips
// parameters whose .grad is None, which MASA's training never produces); a step whose loss or
// gradient norm is not finite is skipped (no update, no moment change, not counted in `steps`).
#ifndef MASA_OPTIM_H
#define MASA_OPTIM_H

#include <stdint.h>

#include "core/config.h"
#include "core/tensor.h"

typedef enum { OPTIM_SGD = 0, OPTIM_ADAMW = 1 } optim_kind;

typedef struct {
  optim_kind kind;
  double lr;              // base learning rate (the schedule scales it; optim_step takes the lr)
  double momentum;        // SGD
  double beta1, beta2, eps;  // AdamW
  double weight_decay;
  int no_decay_norm_bias;    // 1: no decay on "*.bias" and 1-D parameters
  double clip_max_norm;      // <= 0: no clipping (the norm is still computed and returned)
  int max_consecutive_skips;  // this many non-finite steps in a row is an error
} optim_opts;

typedef struct {
  optim_opts o;
  int count;             // entries of the table the optimizer was made for
  double *decay;         // (count) weight decay of each entry (0 for frozen entries)
  int64_t steps;         // updates applied (SGD: momentum initialised at 0; AdamW: bias correction)
  int64_t skipped_total, skipped_consecutive;
} optim;

typedef struct {
  double grad_norm;  // L2 norm of the trainable gradients before clipping (torch's return value)
  double clip_coef;  // factor the gradients were multiplied by (1 when not clipped)
  int skipped;       // 1: non-finite loss or gradient, nothing changed
} optim_step_info;

// Recipe keys optim.* with the official values as defaults.
extern const cfg_key optim_schema[];
int optim_opts_from_config(const config *c, optim_opts *o);
const char *optim_kind_name(optim_kind k);  // "sgd" | "adamw"

// Sets up per-entry decay and allocates the moment buffers of the table (zeroed).
void optim_init(optim *opt, const optim_opts *o, param_table *t);
void optim_free(optim *opt);
// 1 when entry `name` (ndim dims) is exempt from weight decay under no_decay_norm_bias.
int optim_is_norm_or_bias(const char *name, int ndim);

// sum g^2 in double over blocks of OPTIM_NORM_BLOCK elements (each summed in index order), the
// blocks then added in order: the same value for any thread count. NaN/Inf when any element is.
// The CUDA twin (grad_sumsq_cuda) keeps the blocks and their order but sums inside a block with a
// fixed tree, so the two agree to double rounding (not bitwise).
#define OPTIM_NORM_BLOCK 65536
double grad_sumsq_cpu(const float *g, int64_t n);
// sqrt(grad_sumsq_cpu(g, n)).
double grad_norm_l2(const float *g, int64_t n);
// clip_grad_norm_: coef = max_norm / (norm + 1e-6) (float32, as torch), applied when < 1.
// Returns the coefficient applied (1 when not clipped).
double clip_grads(float *g, int64_t n, double norm, double max_norm);
// The coefficient clip_grads would apply (1 when it would not clip); the gradients are untouched.
double clip_coef(double norm, double max_norm);

// Element-wise update rules (CPU twins of the future CUDA kernels), torch's float32 op order.
//   SGD: d = g + wd p; buf = first ? d : momentum buf + d; p -= lr buf   (momentum 0: p -= lr d)
void sgd_update_cpu(float *p, const float *g, float *buf, int64_t n, double lr, double wd,
                    double momentum, int first);
//   AdamW at step t (1-based): p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
void adamw_update_cpu(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                      double wd, double beta1, double beta2, double eps, int64_t t);

// One optimizer step on the (already all-reduced) gradients of t's trainable prefix at learning
// rate lr: norm, non-finite check (loss and norm), clipping, update. Runs on the table's device
// (t->dev) through the dispatchers of train/dispatch_train.h: only the norm (one double) comes
// back to the host. Consecutive entries with the same weight decay are updated in one call. Pass the loss averaged over
// ranks: with identical gradients and loss every rank takes the same skip decision. Gradients are left as clipped
// (the caller zeroes them). MASA_ERR with a message after max_consecutive_skips skipped steps in
// a row; a skipped step otherwise returns MASA_OK with info->skipped = 1.
int optim_step(optim *opt, param_table *t, double lr, double loss, optim_step_info *info);

#endif
