// Shared pieces of `masa check` (the GPU check): each group of CUDA ops has its own file
// (check_<group>.c) with a function that runs its ops on random inputs, odd shapes included,
// and compares each with its CPU twin through gpu_check_compare. Device buffers are followed by
// GPU_CHECK_GUARD sentinel floats that must survive (out-of-bounds writes). CUDA builds only.
#ifndef MASA_GPU_CHECK_H
#define MASA_GPU_CHECK_H

#include <stdint.h>

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

// Op groups (one file each), called in turn by cmd_check.
void gpu_check_ops1(check_state *st, uint64_t seed);  // cmd_check_ops1.c
void gpu_check_ops2(check_state *st, uint64_t seed);  // cmd_check_ops2.c

#endif
