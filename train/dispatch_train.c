// The backend switch for the training ops (train/dispatch_train.h), in the shape of
// ops/dispatch.c (the DISPATCH macro of ops/dispatch_impl.h).
#include "train/dispatch_train.h"

#include "ops/dispatch_impl.h"

double grad_sumsq(const device *d, const float *g, int64_t n) {
  double s = 0.0;
  DISPATCH(d, s = grad_sumsq_cpu(g, n), s = grad_sumsq_cuda(g, n, STREAM(d)));
  return s;
}

void sgd_update(const device *d, float *p, const float *g, float *buf, int64_t n, double lr,
                double wd, double momentum, int first) {
  DISPATCH(d, sgd_update_cpu(p, g, buf, n, lr, wd, momentum, first),
           sgd_update_cuda(p, g, buf, n, lr, wd, momentum, first, STREAM(d)));
}

void adamw_update(const device *d, float *p, const float *g, float *m, float *v, int64_t n,
                  double lr, double wd, double beta1, double beta2, double eps, int64_t t) {
  DISPATCH(d, adamw_update_cpu(p, g, m, v, n, lr, wd, beta1, beta2, eps, t),
           adamw_update_cuda(p, g, m, v, n, lr, wd, beta1, beta2, eps, t, STREAM(d)));
}

double unbiased_contrast_loss_dev(const device *d, int64_t nk, int64_t nr, int64_t dim,
                                  const float *key, const float *ref, const float *target,
                                  float weight, float *dkey, float *dref) {
  double l = 0.0;
  DISPATCH(d, l = unbiased_contrast_loss(nk, nr, dim, key, ref, target, weight, dkey, dref),
           l = unbiased_contrast_loss_cuda(nk, nr, dim, key, ref, target, weight, dkey, dref,
                                           STREAM(d)));
  return l;
}

double margin_l2_loss_dev(const device *d, int64_t nk, int64_t nr, int64_t dim, const float *key,
                          const float *ref, const float *target, const margin_l2_cfg *cfg,
                          float weight, float *dkey, float *dref) {
  double l = 0.0;
  DISPATCH(d, l = margin_l2_loss(nk, nr, dim, key, ref, target, cfg, weight, dkey, dref),
           l = margin_l2_loss_cuda(nk, nr, dim, key, ref, target, cfg, weight, dkey, dref,
                                   STREAM(d)));
  return l;
}
