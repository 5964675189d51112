// CUDA twins of the optimizer pieces of train/optim.h: the gradient sum of squares and the SGD /
// AdamW element-wise updates.
//
// grad_sumsq: the CPU's blocks of OPTIM_NORM_BLOCK elements, one CUDA block each (a fixed strided
// sum per thread, then block_reduce.cuh's tree), then the block sums by one block's tree. No
// atomics: deterministic; the order inside a block differs from the CPU's sequential sum, so the
// two agree to double rounding (the products g*g are exact in double), not bitwise.
//
// Updates: the CPU twins' float32 expressions in the same order with the _rn intrinsics, so nvcc
// cannot contract a*b+c into an FMA; __fdiv_rn / __fsqrt_rn are IEEE-rounded like the CPU's
// '/' and sqrtf. The float scalars are computed on the host by the CPU twin's expressions
// (double arithmetic, then one cast), so results are bit-identical to the CPU twins.
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

extern "C" {
#include "train/optim.h"  // OPTIM_NORM_BLOCK
}

#define OPT_THREADS 256
#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

// part[b] = sum of g^2 over block b of OPTIM_NORM_BLOCK elements.
static __global__ void sumsq_blocks_kernel(int64_t n, const float *g, double *part) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t lo = (int64_t)blockIdx.x * OPTIM_NORM_BLOCK;
  const int64_t hi = lo + OPTIM_NORM_BLOCK < n ? lo + OPTIM_NORM_BLOCK : n;
  double s = 0.0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const double v = (double)g[i];
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  s = block_sum(s, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// out[0] = sum of part[0..nb), one block.
static __global__ void sum_parts_kernel(int64_t nb, const double *part, double *out) {
  __shared__ double sh[REDUCE_THREADS];
  double s = 0.0;
  for (int64_t b = threadIdx.x; b < nb; b += blockDim.x) s = __dadd_rn(s, part[b]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) out[0] = s;
}

static __global__ void sgd_update_kernel(int64_t n, float *p, const float *g, float *buf,
                                         float flr, float fwd, float fm, int first) {
  GRID_STRIDE(i, n) {
    const float pi = p[i];
    float d = g[i];
    if (fwd != 0.0f) d = __fadd_rn(d, __fmul_rn(fwd, pi));
    if (fm != 0.0f) {
      const float b = first ? d : __fadd_rn(__fmul_rn(buf[i], fm), d);
      buf[i] = b;
      d = b;
    }
    p[i] = __fadd_rn(pi, __fmul_rn(flr, d));
  }
}

static __global__ void adamw_update_kernel(int64_t n, float *p, const float *g, float *m, float *v,
                                           float shrink, float b1, float c1, float b2, float c2,
                                           float neg_step, float bc2_sqrt, float feps) {
  GRID_STRIDE(i, n) {
    const float gi = g[i];
    const float pi = __fmul_rn(p[i], shrink);
    const float mi = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(c1, gi));
    const float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(c2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), feps);
    p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(neg_step, mi), denom));
  }
}

extern "C" double grad_sumsq_cuda(const float *g, int64_t n, cudaStream_t stream) {
  if (n <= 0) return 0.0;
  const int64_t nb = (n + OPTIM_NORM_BLOCK - 1) / OPTIM_NORM_BLOCK;
  masa_assert(nb <= 0x7fffffff);
  double *part = NULL, h = 0.0;
  cudaCheck(cudaMallocAsync((void **)&part, (size_t)(nb + 1) * sizeof(double), stream));
  sumsq_blocks_kernel<<<(unsigned)nb, REDUCE_THREADS, 0, stream>>>(n, g, part);
  cudaLaunchCheck();
  sum_parts_kernel<<<1, REDUCE_THREADS, 0, stream>>>(nb, part, part + nb);
  cudaLaunchCheck();
  cudaCheck(cudaMemcpyAsync(&h, part + nb, sizeof(double), cudaMemcpyDeviceToHost, stream));
  cudaCheck(cudaFreeAsync(part, stream));
  cudaCheck(cudaStreamSynchronize(stream));
  return h;
}

extern "C" void sgd_update_cuda(float *p, const float *g, float *buf, int64_t n, double lr,
                                double wd, double momentum, int first, cudaStream_t stream) {
  if (n <= 0) return;
  const float flr = (float)(-lr), fwd = (float)wd, fm = (float)momentum;
  sgd_update_kernel<<<blocks_for(n, OPT_THREADS), OPT_THREADS, 0, stream>>>(n, p, g, buf, flr, fwd,
                                                                             fm, first);
  cudaLaunchCheck();
}

extern "C" void adamw_update_cuda(float *p, const float *g, float *m, float *v, int64_t n,
                                  double lr, double wd, double beta1, double beta2, double eps,
                                  int64_t t, cudaStream_t stream) {
  if (n <= 0) return;
  // The CPU twin's scalar expressions, verbatim.
  const float shrink = (float)(1.0 - lr * wd);
  const float b1 = (float)beta1, c1 = (float)(1.0 - beta1);
  const float b2 = (float)beta2, c2 = (float)(1.0 - beta2);
  const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
  const float neg_step = (float)(-(lr / bc1));
  const float bc2_sqrt = (float)sqrt(bc2), feps = (float)eps;
  adamw_update_kernel<<<blocks_for(n, OPT_THREADS), OPT_THREADS, 0, stream>>>(
      n, p, g, m, v, shrink, b1, c1, b2, c2, neg_step, bc2_sqrt, feps);
  cudaLaunchCheck();
}
