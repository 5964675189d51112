// SGD / AdamW / clipping mirroring torch 1.13's single-tensor code paths (see optim.h).
// Scalars (lr, decay, betas) are cast to float where torch passes them to a float32 kernel, and
// the element-wise expressions keep torch's operation order, so results agree with PyTorch to a
// few float32 ulps (torch's vectorised kernels may fuse a multiply-add where we round twice).
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "ops/dispatch.h"
#include "train/dispatch_train.h"

const cfg_key optim_schema[] = {
    {"optim.type", CFG_STRING, "sgd", "sgd (official) | adamw"},
    {"optim.lr", CFG_FLOAT, "0.08", "base learning rate (official 0.08 for 64 pairs per iteration)"},
    {"optim.momentum", CFG_FLOAT, "0.9", "SGD momentum"},
    {"optim.weight_decay", CFG_FLOAT, "0.0001", "weight decay (SGD: added to the gradient; AdamW: decoupled)"},
    {"optim.betas", CFG_FLOAT_LIST, "0.9, 0.999", "AdamW betas"},
    {"optim.eps", CFG_FLOAT, "1e-8", "AdamW epsilon"},
    {"optim.no_decay_norm_bias", CFG_BOOL, "false", "no weight decay on biases and norm scales (official: decay everything)"},
    {"optim.clip_grad", CFG_FLOAT, "35", "clip the gradient L2 norm to this (0: off; official 35)"},
    {"optim.max_skips", CFG_INT, "5", "stop after this many consecutive steps with non-finite loss or gradients"},
    {NULL, 0, NULL, NULL}};

const char *optim_kind_name(optim_kind k) { return k == OPTIM_ADAMW ? "adamw" : "sgd"; }

int optim_opts_from_config(const config *c, optim_opts *o) {
  memset(o, 0, sizeof *o);
  const char *type = config_str(c, "optim.type");
  if (!strcmp(type, "sgd"))
    o->kind = OPTIM_SGD;
  else if (!strcmp(type, "adamw"))
    o->kind = OPTIM_ADAMW;
  else
    return masa_error("optim.type: '%s' is not an optimizer (sgd | adamw)", type);
  o->lr = config_float(c, "optim.lr");
  o->momentum = config_float(c, "optim.momentum");
  o->weight_decay = config_float(c, "optim.weight_decay");
  double b[CFG_MAX_LIST];
  if (config_float_list(c, "optim.betas", b, CFG_MAX_LIST) != 2)
    return masa_error("optim.betas needs two values (beta1, beta2)");
  o->beta1 = b[0], o->beta2 = b[1];
  o->eps = config_float(c, "optim.eps");
  o->no_decay_norm_bias = config_bool(c, "optim.no_decay_norm_bias");
  o->clip_max_norm = config_float(c, "optim.clip_grad");
  o->max_consecutive_skips = (int)config_int(c, "optim.max_skips");
  if (!(o->lr > 0)) return masa_error("optim.lr must be positive, got %g", o->lr);
  if (o->momentum < 0 || o->momentum >= 1) return masa_error("optim.momentum must be in [0, 1), got %g", o->momentum);
  if (o->weight_decay < 0) return masa_error("optim.weight_decay must be >= 0, got %g", o->weight_decay);
  if (o->beta1 < 0 || o->beta1 >= 1 || o->beta2 < 0 || o->beta2 >= 1)
    return masa_error("optim.betas must be in [0, 1), got %g, %g", o->beta1, o->beta2);
  if (!(o->eps > 0)) return masa_error("optim.eps must be positive, got %g", o->eps);
  if (o->clip_max_norm < 0) return masa_error("optim.clip_grad must be >= 0 (0: off), got %g", o->clip_max_norm);
  if (o->max_consecutive_skips < 1) return masa_error("optim.max_skips must be at least 1");
  return MASA_OK;
}

int optim_is_norm_or_bias(const char *name, int ndim) {
  size_t n = strlen(name);
  if (n >= 5 && !strcmp(name + n - 5, ".bias")) return 1;
  return ndim == 1;
}

void optim_init(optim *opt, const optim_opts *o, param_table *t) {
  masa_assert(t->params != NULL);
  memset(opt, 0, sizeof *opt);
  opt->o = *o;
  opt->count = t->count;
  opt->decay = callocCheck((size_t)(t->count ? t->count : 1), sizeof(double));
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (!e->trainable) continue;
    int exempt = o->no_decay_norm_bias && optim_is_norm_or_bias(e->name, e->ndim);
    opt->decay[i] = exempt ? 0.0 : o->weight_decay;
  }
  param_table_alloc_moments(t, o->kind == OPTIM_ADAMW ? 2 : 1);
  dev_zero(&t->dev, t->moment1, t->trainable_total * sizeof(float));
  if (t->moment2) dev_zero(&t->dev, t->moment2, t->trainable_total * sizeof(float));
}

void optim_free(optim *opt) {
  free(opt->decay);
  memset(opt, 0, sizeof *opt);
}

double grad_sumsq_cpu(const float *g, int64_t n) {
  // Block partial sums in double, then the blocks in order: the result depends only on n.
  int64_t nb = (n + OPTIM_NORM_BLOCK - 1) / OPTIM_NORM_BLOCK;
  if (nb <= 0) return 0.0;
  double *part = mallocCheck((size_t)nb * sizeof(double));
#pragma omp parallel for schedule(static) if (nb > 1)
  for (int64_t b = 0; b < nb; b++) {
    int64_t lo = b * OPTIM_NORM_BLOCK, hi = lo + OPTIM_NORM_BLOCK < n ? lo + OPTIM_NORM_BLOCK : n;
    double s = 0;
    for (int64_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
    part[b] = s;
  }
  double s = 0;
  for (int64_t b = 0; b < nb; b++) s += part[b];
  free(part);
  return s;
}

double grad_norm_l2(const float *g, int64_t n) { return sqrt(grad_sumsq_cpu(g, n)); }

double clip_coef(double norm, double max_norm) {
  if (!(max_norm > 0)) return 1.0;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, where
  // `scalar / tensor` is tensor.reciprocal() * scalar; then clamp(max=1) and multiply.
  float denom = (float)norm + 1e-6f;
  float coef = (1.0f / denom) * (float)max_norm;
  return coef < 1.0f ? coef : 1.0;
}

double clip_grads(float *g, int64_t n, double norm, double max_norm) {
  double coef = clip_coef(norm, max_norm);
  if (coef == 1.0) return 1.0;
  const float c = (float)coef;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) g[i] *= c;
  return coef;
}

void sgd_update_cpu(float *p, const float *g, float *buf, int64_t n, double lr, double wd,
                    double momentum, int first) {
  const float flr = (float)(-lr), fwd = (float)wd, fm = (float)momentum;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float d = g[i];
    if (fwd != 0.0f) d = d + fwd * p[i];
    if (fm != 0.0f) {
      buf[i] = first ? d : buf[i] * fm + d;
      d = buf[i];
    }
    p[i] = p[i] + flr * d;
  }
}

void adamw_update_cpu(float *p, const float *g, float *m, float *v, int64_t n, double lr,
                      double wd, double beta1, double beta2, double eps, int64_t t) {
  const float shrink = (float)(1.0 - lr * wd);
  const float b1 = (float)beta1, c1 = (float)(1.0 - beta1);
  const float b2 = (float)beta2, c2 = (float)(1.0 - beta2);
  const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
  const float neg_step = (float)(-(lr / bc1));
  const float bc2_sqrt = (float)sqrt(bc2), feps = (float)eps;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    p[i] = p[i] * shrink;
    m[i] = m[i] * b1 + c1 * g[i];
    v[i] = v[i] * b2 + c2 * g[i] * g[i];
    float denom = sqrtf(v[i]) / bc2_sqrt + feps;
    p[i] = p[i] + neg_step * m[i] / denom;
  }
}

int optim_step(optim *opt, param_table *t, double lr, double loss, optim_step_info *info) {
  masa_assert(opt->count == t->count && t->moment1 != NULL);
  optim_step_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  const device *d = &t->dev;
  int64_t n = (int64_t)t->trainable_total;
  info->grad_norm = sqrt(grad_sumsq(d, t->grads, n));
  info->clip_coef = 1.0;
  if (!isfinite(loss) || !isfinite(info->grad_norm)) {
    info->skipped = 1;
    opt->skipped_total++;
    opt->skipped_consecutive++;
    log_warn("step skipped: %s is not finite (loss %g, gradient norm %g); %lld skipped in a row, "
             "%lld in all", isfinite(loss) ? "gradient" : "loss", loss, info->grad_norm,
             (long long)opt->skipped_consecutive, (long long)opt->skipped_total);
    if (opt->skipped_consecutive >= opt->o.max_consecutive_skips)
      return masa_error("training diverged: %lld consecutive steps had a non-finite loss or gradient "
                        "(last: loss %g, gradient norm %g; optim.max_skips = %d). Lower optim.lr, "
                        "check the data, or resume from an earlier checkpoint.",
                        (long long)opt->skipped_consecutive, loss, info->grad_norm,
                        opt->o.max_consecutive_skips);
    return MASA_OK;
  }
  opt->skipped_consecutive = 0;
  info->clip_coef = clip_coef(info->grad_norm, opt->o.clip_max_norm);
  if (info->clip_coef != 1.0) ew_scale(d, n, (float)info->clip_coef, t->grads);
  int first = opt->steps == 0;
  opt->steps++;
  // Element-wise updates: a run of entries that are adjacent in the buffers and share a decay is
  // one call (one kernel launch on a GPU; the official recipe decays everything: one run).
  for (int i = 0; i < t->count;) {
    const param_entry *e = &t->entries[i];
    if (!e->trainable || e->numel == 0) {
      i++;
      continue;
    }
    size_t lo = e->offset, hi = e->offset + (size_t)e->numel;
    double wd = opt->decay[i];
    int j = i + 1;
    for (; j < t->count; j++) {
      const param_entry *f = &t->entries[j];
      if (!f->trainable || f->numel == 0) continue;  // not in the trainable prefix
      if (f->offset != hi || opt->decay[j] != wd) break;
      hi += (size_t)f->numel;
    }
    i = j;
    int64_t m = (int64_t)(hi - lo);
    float *p = t->params + lo, *g = t->grads + lo, *m1 = t->moment1 + lo;
    if (opt->o.kind == OPTIM_SGD)
      sgd_update(d, p, g, m1, m, lr, wd, opt->o.momentum, first);
    else
      adamw_update(d, p, g, m1, t->moment2 + lo, m, lr, wd, opt->o.beta1, opt->o.beta2, opt->o.eps,
                   opt->steps);
  }
  return MASA_OK;
}
