// The backend switch for the training ops (train/): the gradient norm, the SGD / AdamW updates
// and the tracking losses, each taking the device first, in the shape of ops/dispatch.h: the CPU
// twin runs on the cpu device (and, with guard memory opened, on the guard device), the CUDA twin
// (kernels/optim.cu, kernels/losses.cu) on a CUDA device. Pointers are that device's pointers,
// except the loss targets (see below). Semantics are the CPU functions' (train/optim.h,
// train/losses.h).
#ifndef MASA_DISPATCH_TRAIN_H
#define MASA_DISPATCH_TRAIN_H

#include <stdint.h>

#include "core/device.h"
#include "train/losses.h"
#include "train/optim.h"

// optim.h. grad_sumsq returns to the host (on CUDA it synchronises the stream).
double grad_sumsq(const device *d, const float *g, int64_t n);
void sgd_update(const device *d, float *p, const float *g, float *buf, int64_t n, double lr,
                double wd, double momentum, int first);
void adamw_update(const device *d, float *p, const float *g, float *m, float *v, int64_t n,
                  double lr, double wd, double beta1, double beta2, double eps, int64_t t);

// losses.h. key, ref, dkey, dref live on d; target (nk, nr) is HOST memory (the targets are
// built on the host). Returns the loss to the host (on CUDA: synchronises the stream).
double unbiased_contrast_loss_dev(const device *d, int64_t nk, int64_t nr, int64_t dim,
                                  const float *key, const float *ref, const float *target,
                                  float weight, float *dkey, float *dref);
double margin_l2_loss_dev(const device *d, int64_t nk, int64_t nr, int64_t dim, const float *key,
                          const float *ref, const float *target, const margin_l2_cfg *cfg,
                          float weight, float *dkey, float *dref);

#endif
