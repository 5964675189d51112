// Learning-rate schedules as pure functions of (iteration, epoch).
//
// multistep (the official recipe, masa-spec §6): mmengine
//   LinearLR(start_factor s, by_epoch False, begin 0, end N) + MultiStepLR(by_epoch True,
//   milestones, gamma). Both are "chainable" schedulers multiplying the same param_group['lr'],
//   so their factors multiply. mmengine steps LinearLR once at construction and after every
//   iteration, with total_iters = end - begin - 1 = N - 1; MultiStepLR once at construction and
//   after every epoch. Iteration i (0-based, global) of epoch e therefore runs at
//     lr = base * w(i) * gamma^#{milestones m : m <= e}
//     w(i) = s + (1 - s) * min(i, N - 1) / (N - 1)       (N >= 2; w = 1 when N = 0)
//   i.e. the full lr is reached AT iteration N-1 (torch's LinearLR(total_iters=N-1)), and the
//   decay to 0.1x starts with the first iteration of epoch m (epoch 8 = iteration 25,000 and
//   epoch 11 = iteration 34,375 in the official 3,125-iteration epochs).
//
// cosine (for AdamW; no official recipe): the mmengine pair LinearLR(begin 0, end N) +
// CosineAnnealingLR(begin N, end T, eta_min, by_epoch False), T = total iterations:
//     i <  N: base * w(i)
//     i >= N: eta_min + (base - eta_min) * (1 + cos(pi * (i - N) / (T - N))) / 2
//   (eta_min itself is never reached: mmengine's last update is at iteration T - 1; later
//   iterations keep that value).
#ifndef MASA_SCHEDULE_H
#define MASA_SCHEDULE_H

#include <stdint.h>

#include "core/config.h"

typedef enum { LR_MULTISTEP = 0, LR_COSINE = 1 } lr_policy;

typedef struct {
  lr_policy policy;
  double base_lr;
  int64_t warmup_iters;        // N (mmengine LinearLR end); 0: no warm-up
  double warmup_start_factor;  // s
  int n_milestones;
  int64_t milestones[CFG_MAX_LIST];  // epochs (multistep)
  double gamma;
  int64_t total_iters;  // T (cosine): max_epochs * iterations per epoch
  double min_lr;        // eta_min (cosine)
} lr_schedule;

// Recipe keys lr.* (the base lr itself is optim.lr, see train/optim.h).
extern const cfg_key lr_schema[];
// Reads lr.* and optim.lr; total_iters = max_epochs * iters_per_epoch.
int lr_schedule_from_config(const config *c, int64_t iters_per_epoch, int64_t max_epochs,
                            lr_schedule *s);
// MASA_ERR with a message for inconsistent values (warm-up of 1 iteration, unsorted milestones..).
int lr_schedule_check(const lr_schedule *s);

// Learning rate of global iteration `iter` (0-based), which belongs to epoch `epoch` (0-based).
double lr_at(const lr_schedule *s, int64_t iter, int64_t epoch);

#endif
