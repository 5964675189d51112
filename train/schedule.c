// Closed forms of mmengine's chained LinearLR + MultiStepLR / CosineAnnealingLR (see schedule.h).
// mmengine computes the same values by repeated multiplication; the two agree to ~1e-15 relative.
#include "train/schedule.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

const cfg_key lr_schema[] = {
    {"lr.policy", CFG_STRING, "multistep", "multistep (official, with SGD) | cosine"},
    {"lr.warmup_iters", CFG_INT, "1000", "linear warm-up iterations N (mmengine LinearLR end; 0: none)"},
    {"lr.warmup_start_factor", CFG_FLOAT, "0.001", "lr factor of the first iteration"},
    {"lr.milestones", CFG_INT_LIST, "8, 11", "multistep: epochs from which the lr is multiplied by lr.gamma"},
    {"lr.gamma", CFG_FLOAT, "0.1", "multistep decay factor"},
    {"lr.min_lr", CFG_FLOAT, "0", "cosine: final learning rate (eta_min)"},
    {NULL, 0, NULL, NULL}};

int lr_schedule_check(const lr_schedule *s) {
  if (!(s->base_lr > 0)) return masa_error("learning rate must be positive, got %g", s->base_lr);
  if (s->warmup_iters < 0 || s->warmup_iters == 1)
    return masa_error("lr.warmup_iters must be 0 (none) or at least 2, got %lld (mmengine's LinearLR "
                      "with end - begin = 1 would never leave the start factor)",
                      (long long)s->warmup_iters);
  if (s->warmup_iters && !(s->warmup_start_factor > 0 && s->warmup_start_factor <= 1))
    return masa_error("lr.warmup_start_factor must be in (0, 1], got %g", s->warmup_start_factor);
  if (s->policy == LR_MULTISTEP) {
    for (int k = 0; k < s->n_milestones; k++) {
      if (s->milestones[k] < 0) return masa_error("lr.milestones: epoch %lld is negative", (long long)s->milestones[k]);
      if (k && s->milestones[k] < s->milestones[k - 1])
        return masa_error("lr.milestones must be increasing (%lld after %lld)",
                          (long long)s->milestones[k], (long long)s->milestones[k - 1]);
    }
    if (!(s->gamma > 0)) return masa_error("lr.gamma must be positive, got %g", s->gamma);
  } else if (s->policy == LR_COSINE) {
    if (s->total_iters <= s->warmup_iters)
      return masa_error("cosine schedule: %lld total iterations leave nothing after %lld warm-up iterations",
                        (long long)s->total_iters, (long long)s->warmup_iters);
    if (s->min_lr < 0 || s->min_lr > s->base_lr)
      return masa_error("lr.min_lr must be in [0, optim.lr], got %g", s->min_lr);
  } else {
    return masa_error("unknown lr policy %d", (int)s->policy);
  }
  return MASA_OK;
}

int lr_schedule_from_config(const config *c, int64_t iters_per_epoch, int64_t max_epochs,
                            lr_schedule *s) {
  memset(s, 0, sizeof *s);
  const char *p = config_str(c, "lr.policy");
  if (!strcmp(p, "multistep"))
    s->policy = LR_MULTISTEP;
  else if (!strcmp(p, "cosine"))
    s->policy = LR_COSINE;
  else
    return masa_error("lr.policy: '%s' is not a schedule (multistep | cosine)", p);
  s->base_lr = config_float(c, "optim.lr");
  s->warmup_iters = config_int(c, "lr.warmup_iters");
  s->warmup_start_factor = config_float(c, "lr.warmup_start_factor");
  s->n_milestones = config_int_list(c, "lr.milestones", s->milestones, CFG_MAX_LIST);
  s->gamma = config_float(c, "lr.gamma");
  s->min_lr = config_float(c, "lr.min_lr");
  s->total_iters = iters_per_epoch * max_epochs;
  return lr_schedule_check(s);
}

static double warmup_factor(const lr_schedule *s, int64_t iter) {
  if (s->warmup_iters < 2) return 1.0;
  int64_t last = s->warmup_iters - 1;  // mmengine total_iters = end - begin - 1
  int64_t k = iter < last ? iter : last;
  return s->warmup_start_factor + (1.0 - s->warmup_start_factor) * (double)k / (double)last;
}

double lr_at(const lr_schedule *s, int64_t iter, int64_t epoch) {
  if (iter < 0) iter = 0;
  if (s->policy == LR_COSINE) {
    if (iter < s->warmup_iters) return s->base_lr * warmup_factor(s, iter);
    int64_t tmax = s->total_iters - s->warmup_iters, k = iter - s->warmup_iters;
    if (k > tmax - 1) k = tmax - 1;  // mmengine stops stepping at end - 1
    return s->min_lr + (s->base_lr - s->min_lr) * (1.0 + cos(M_PI * (double)k / (double)tmax)) / 2.0;
  }
  double decay = 1.0;
  for (int k = 0; k < s->n_milestones; k++)
    if (s->milestones[k] <= epoch) decay *= s->gamma;
  return s->base_lr * warmup_factor(s, iter) * decay;
}
