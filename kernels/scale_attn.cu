// CUDA twins of scale_attn_forward/backward (ops/scale_attn.h): DyHead's scale-aware attention,
// one scalar per image a = hsig(relu(bias + w . GAP(f))).
// - Forward: GAP by global_avg_pool_forward_cuda (tree sum in double: within double rounding of
//   the CPU); z by one thread per image summing the channels in the CPU's order with _rn
//   intrinsics (bit-identical given p).
// - Backward: da[b] = sum over (c, hw) of dterm f, in double: fixed chunks per image reduced by
//   block trees, then the chunk partials in order (deterministic; within double rounding of the
//   CPU's sequential sum). dw / db: one thread per channel summing over images in order, as the
//   CPU's image loop accumulates. df: pointwise, the CPU's float expression (bit-identical given
//   dz). No atomics; NULL gradients skipped; everything accumulates (+=).
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

#define SA_CHUNK ((int64_t)1 << 16)  // elements per partial sum in the backward reduction

static __device__ inline float sa_value(float z) {
  const float r = z > 0.0f ? z : 0.0f, v = __fdiv_rn(__fadd_rn(r, 3.0f), 6.0f);
  return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

static __global__ void scale_attn_z_kernel(int64_t n, int64_t c, const float *__restrict__ p,
                                           const float *__restrict__ w,
                                           const float *__restrict__ bias, float *__restrict__ z,
                                           float *__restrict__ a) {
  GRID_STRIDE(b, n) {
    double s = (double)bias[0];
    for (int64_t ch = 0; ch < c; ch++)
      s = __dadd_rn(s, __dmul_rn((double)w[ch], (double)p[b * c + ch]));
    const float zb = (float)s;
    z[b] = zb;
    a[b] = sa_value(zb);
  }
}

extern "C" void scale_attn_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *f,
                                        const float *w, const float *bias, float *p, float *z,
                                        float *a, cudaStream_t stream) {
  masa_assert(n >= 0 && c > 0 && hw > 0);
  if (n == 0) return;
  global_avg_pool_forward_cuda(n, c, hw, f, p, stream);
  scale_attn_z_kernel<<<blocks_for(n, 64), 64, 0, stream>>>(n, c, p, w, bias, z, a);
  cudaLaunchCheck();
}

// part[b, k] = sum of dterm * f over chunk k of image b (blockIdx.y = b).
static __global__ void scale_attn_partial_kernel(int64_t chw, int64_t chunks,
                                                 const float *__restrict__ f,
                                                 const float *__restrict__ g,
                                                 double *__restrict__ part) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t b = blockIdx.y;
  for (int64_t k = blockIdx.x; k < chunks; k += gridDim.x) {
    const int64_t lo = k * SA_CHUNK, hi = lo + SA_CHUNK < chw ? lo + SA_CHUNK : chw;
    const float *fb = f + b * chw, *gb = g + b * chw;
    double s = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x)
      s = __dadd_rn(s, __dmul_rn((double)gb[i], (double)fb[i]));
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[b * chunks + k] = s;
  }
}

// dz[b] from the partials, in chunk order.
static __global__ void scale_attn_dz_kernel(int64_t n, int64_t chunks,
                                            const double *__restrict__ part,
                                            const float *__restrict__ z, double *__restrict__ dz) {
  GRID_STRIDE(b, n) {
    double da = 0.0;
    for (int64_t k = 0; k < chunks; k++) da = __dadd_rn(da, part[b * chunks + k]);
    const float zb = z[b], r = zb > 0.0f ? zb : 0.0f, v = __fdiv_rn(__fadd_rn(r, 3.0f), 6.0f);
    dz[b] = (v >= 0.0f && v <= 1.0f && zb > 0.0f) ? __ddiv_rn(da, 6.0) : 0.0;
  }
}

// dw[ch] += (float)(dz[b] p[b, ch]) for b in order; thread ch == 0 also does db.
static __global__ void scale_attn_dw_kernel(int64_t n, int64_t c, const double *__restrict__ dz,
                                            const float *__restrict__ p, float *__restrict__ dw,
                                            float *__restrict__ db) {
  GRID_STRIDE(ch, c) {
    if (dw) {
      float acc = dw[ch];
      for (int64_t b = 0; b < n; b++)
        acc = __fadd_rn(acc, (float)__dmul_rn(dz[b], (double)p[b * c + ch]));
      dw[ch] = acc;
    }
    if (db && ch == 0) {
      float acc = db[0];
      for (int64_t b = 0; b < n; b++) acc = __fadd_rn(acc, (float)dz[b]);
      db[0] = acc;
    }
  }
}

static __global__ void scale_attn_df_kernel(int64_t n, int64_t c, int64_t hw,
                                            const double *__restrict__ dz,
                                            const float *__restrict__ a,
                                            const float *__restrict__ w,
                                            const float *__restrict__ g, float *__restrict__ df) {
  GRID_STRIDE(i, n * c * hw) {
    const int64_t bc = i / hw, b = bc / c, ch = bc % c;
    const float dp = (float)__ddiv_rn(__dmul_rn(dz[b], (double)w[ch]), (double)hw);
    df[i] = __fadd_rn(df[i], __fadd_rn(__fmul_rn(g[i], a[b]), dp));
  }
}

extern "C" void scale_attn_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *f,
                                         const float *p, const float *z, const float *a,
                                         const float *w, const float *dterm, float *df,
                                         float *dw, float *db, cudaStream_t stream) {
  masa_assert(n >= 0 && c > 0 && hw > 0);
  if (n == 0 || (!df && !dw && !db)) return;
  masa_assert(n <= 65535);
  const int64_t chw = c * hw, chunks = (chw + SA_CHUNK - 1) / SA_CHUNK;
  double *ws = NULL;
  cudaCheck(cudaMallocAsync((void **)&ws, (size_t)(n * chunks + n) * sizeof(double), stream));
  double *part = ws, *dz = ws + n * chunks;
  dim3 grid(blocks_for(chunks, 1) > 1024 ? 1024 : blocks_for(chunks, 1), (unsigned)n);
  scale_attn_partial_kernel<<<grid, REDUCE_THREADS, 0, stream>>>(chw, chunks, f, dterm, part);
  cudaLaunchCheck();
  scale_attn_dz_kernel<<<blocks_for(n, 64), 64, 0, stream>>>(n, chunks, part, z, dz);
  cudaLaunchCheck();
  if (dw || db) {
    scale_attn_dw_kernel<<<blocks_for(c, 128), 128, 0, stream>>>(n, c, dz, p, dw, db);
    cudaLaunchCheck();
  }
  if (df) {
    scale_attn_df_kernel<<<blocks_for(n * chw, 256), 256, 0, stream>>>(n, c, hw, dz, a, w, dterm,
                                                                      df);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(ws, stream));
}
