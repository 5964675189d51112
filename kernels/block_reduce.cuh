// Launch sizing and deterministic block reductions shared by the row-reduction kernels
// (softmax.cu, global_avg_pool.cu, norm.cu). A reduction's result depends only on the data and
// on blockDim.x (a compile-time constant at every launch site): each thread sums its strided
// elements in index order, then a fixed shared-memory tree combines the threads. No atomics, so
// repeated runs are bitwise identical.
#ifndef MASA_BLOCK_REDUCE_CUH
#define MASA_BLOCK_REDUCE_CUH

#include <stdint.h>

#define REDUCE_THREADS 256  // power of two: the tree below halves it

// Blocks for a grid-stride loop over n items (at least 1, capped; the loop covers the rest).
static inline unsigned blocks_for(int64_t n, int block) {
  int64_t g = (n + block - 1) / block;
  if (g > 65535 * 8) g = 65535 * 8;
  return (unsigned)(g > 0 ? g : 1);
}

// Sum of v over the block (every thread gets it). sh: blockDim.x doubles of shared memory.
// Ends with a barrier so sh may be reused at once.
static __device__ inline double block_sum(double v, double *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = __dadd_rn(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

// Two sums at once (one tree, half the barriers). sh: 2 * blockDim.x doubles.
static __device__ inline void block_sum2(double *a, double *b, double *sh) {
  double *sa = sh, *sb = sh + blockDim.x;
  sa[threadIdx.x] = *a;
  sb[threadIdx.x] = *b;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sa[threadIdx.x] = __dadd_rn(sa[threadIdx.x], sa[threadIdx.x + s]);
      sb[threadIdx.x] = __dadd_rn(sb[threadIdx.x], sb[threadIdx.x + s]);
    }
    __syncthreads();
  }
  *a = sa[0];
  *b = sb[0];
  __syncthreads();
}

// Max of v over the block. fmaxf ignores NaN, as the CPU's `x > m` scan from -inf does.
static __device__ inline float block_max(float v, float *sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  float r = sh[0];
  __syncthreads();
  return r;
}

#endif
