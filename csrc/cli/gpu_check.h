// Shared pieces of `masa check` (the GPU check): each group of CUDA ops has its own file
// (check_<group>.c) with a function that runs its ops on random inputs, odd shapes included,
// and compares each with its CPU twin through gpu_check_compare. Device buffers are followed by
// GPU_CHECK_GUARD sentinel floats that must survive (out-of-bounds writes). CUDA builds only.
#ifndef MASA_GPU_CHECK_H
#define MASA_GPU_CHECK_H

#include <stdint.h>

#include "core/device.h"

#define GUARD 64
#define SENTINEL (-31337.0f)

typedef struct {
  int failures, total;
} check_state;

// One table row: |got - ref| <= atol + rtol |ref| element-wise, and got's guard intact.
void gpu_check_compare(check_state *st, const char *op, const float *got, const float *ref,
                       int64_t n, double atol, double rtol);
// Device copy of host[0..n) (zeros when host is NULL) followed by GUARD sentinels.
float *gpu_check_dev_guarded(const float *host, int64_t n);
// Host copy of n floats + the guard (synchronises first); free() it.
float *gpu_check_host_copy(const float *dev, int64_t n);
// n uniform floats in [-1, 1) from (seed, stream); free() it.
float *gpu_check_random(int64_t n, uint64_t seed, uint64_t stream);
// n uniform floats in [lo, hi); free() it.
float *gpu_check_uniform(int64_t n, uint64_t seed, uint64_t stream, float lo, float hi);
// A malloc'd copy of src[0..n) (valid for n = 0); free() it.
float *gpu_check_copy(const float *src, int64_t n);
// Device buffer dev (n floats + guard) against the CPU reference ref: one table row.
void gpu_check_cmp(check_state *st, const char *name, const float *dev, const float *ref,
                   int64_t n, double atol, double rtol);

// Op groups (one file each), called in turn by cmd_check.
void gpu_check_ops1(check_state *st, uint64_t seed);  // cmd_check_ops1.c
void gpu_check_ops2(check_state *st, uint64_t seed);  // cmd_check_ops2.c
void gpu_check_ops3(check_state *st, uint64_t seed);  // cmd_check_ops3.c: elementwise, gemm, BN fold
void gpu_check_sam(check_state *st, uint64_t seed);   // cmd_check_sam.c: transposed conv, DyReLU
void gpu_check_vit(check_state *st, uint64_t seed);   // cmd_check_vit.c: ViT layer norm, attention
void gpu_check_optim(check_state *st, uint64_t seed); // cmd_check_optim.c: optimizer, grad norm
void gpu_check_cudnn(check_state *st, uint64_t seed); // cmd_check_cudnn.c: conv2d through cuDNN
void gpu_check_bf16(check_state *st, uint64_t seed);  // cmd_check_bf16.c: GEMMs in bf16 mode
void gpu_check_rpn(check_state *st, uint64_t seed);   // cmd_check_rpn.c: RPN proposals + NMS
// One full training step on dev against the cpu (cmd_check_step.c; any device, CUDA or not).
int gpu_check_train_step(check_state *st, const device *dev, uint64_t seed);

#endif
