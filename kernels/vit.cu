// CUDA twins of the ViT ops (ops/vit_ops.h; CPU twins in csrc/ops/vit_ops.c). Grid-stride loops
// over 64-bit indices; the _rn intrinsics keep nvcc from contracting a*b+c into FMAs, so the
// data movement ops, the bias add, get_rel_pos and the relative-position dot products repeat the
// CPU's float operations exactly. Row reductions (LayerNorm statistics, softmax max and sum) use
// one block per row and block_reduce.cuh's fixed tree: deterministic, no atomics, but summed in
// another order than the CPU (LayerNorm: double, within double rounding; softmax: the CPU sums
// floats in eight lanes, the GPU in double) and CUDA's expf is within 2 ulp of glibc's.
// vit_gemm_batched is a strided batched GEMM with the operands swapped (row-major, as gemm.cu),
// through masa_gemm_strided_batched_ex (kernels/precision.cu: FP32 pedantic, or bf16 operands).
#include <limits.h>
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define VIT_THREADS 256
#define VIT_MAX_ROW_BLOCKS (1 << 20)
#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)
#define LAUNCH(n) blocks_for((n), VIT_THREADS), VIT_THREADS, 0, stream

static unsigned row_blocks(int64_t rows) {
  return (unsigned)(rows < VIT_MAX_ROW_BLOCKS ? rows : VIT_MAX_ROW_BLOCKS);
}

static __global__ void patch_tokens_kernel(int64_t B, int64_t C, int64_t T, const float *pe,
                                           const float *pos, float *x) {
  GRID_STRIDE(i, B * T * C) {
    int64_t r = i / C, ch = i % C, b = r / T, tok = r % T;
    float v = pe[(b * C + ch) * T + tok];
    x[i] = pos ? __fadd_rn(v, pos[tok * C + ch]) : v;
  }
}

static __global__ void tokens_to_nchw_kernel(int64_t B, int64_t T, int64_t C, const float *x,
                                             float *y) {
  GRID_STRIDE(i, B * C * T) {
    int64_t tok = i % T, ch = (i / T) % C, b = i / (T * C);
    y[i] = x[(b * T + tok) * C + ch];
  }
}

// One block per row; each thread writes only its own columns after both reductions (in place
// safe).
static __global__ void layer_norm_rows_kernel(int64_t rows, int64_t C, float eps, const float *x,
                                              const float *g, const float *b, float *y) {
  __shared__ double sh[REDUCE_THREADS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * C;
    float *yr = y + r * C;
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s = __dadd_rn(s, (double)xr[c]);
    s = block_sum(s, sh);
    double mean = s / (double)C;
    double ss = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      double dl = __dsub_rn((double)xr[c], mean);
      ss = __dadd_rn(ss, __dmul_rn(dl, dl));
    }
    ss = block_sum(ss, sh);
    float rstd = (float)(1.0 / sqrt(__dadd_rn(ss / (double)C, (double)eps))), mf = (float)mean;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
      yr[c] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xr[c], mf), rstd), g[c]), b[c]);
  }
}

static __global__ void bias_rows_kernel(int64_t rows, int64_t cols, const float *b, float *y) {
  GRID_STRIDE(i, rows * cols) y[i] = __fadd_rn(y[i], b[i % cols]);
}

static __global__ void window_partition_kernel(int64_t B, int64_t gh, int64_t gw, int64_t C,
                                               int64_t ws, int64_t nwh, int64_t nww,
                                               const float *x, float *xw) {
  GRID_STRIDE(e, B * nwh * nww * ws * ws * C) {
    int64_t ch = e % C, p = e / C;
    int64_t j = p % ws, i = (p / ws) % ws, wi = p / (ws * ws);
    int64_t b = wi / (nwh * nww), wy = (wi / nww) % nwh, wx = wi % nww;
    int64_t yy = wy * ws + i, xx = wx * ws + j;
    xw[e] = yy < gh && xx < gw ? x[((b * gh + yy) * gw + xx) * C + ch] : 0.0f;
  }
}

static __global__ void window_unpartition_add_kernel(int64_t B, int64_t gh, int64_t gw,
                                                     int64_t C, int64_t ws, int64_t nwh,
                                                     int64_t nww, const float *xw, float *x) {
  GRID_STRIDE(e, B * gh * gw * C) {
    int64_t ch = e % C, r = e / C;
    int64_t b = r / (gh * gw), yy = (r / gw) % gh, xx = r % gw;
    int64_t src = (((b * nwh + yy / ws) * nww + xx / ws) * ws + yy % ws) * ws + xx % ws;
    x[e] = __fadd_rn(x[e], xw[src * C + ch]);
  }
}

// qf, kf, off, scale: computed on the host exactly as the CPU twin does.
static __global__ void get_rel_pos_kernel(int64_t qs, int64_t ks, const float *table, int64_t L,
                                          int64_t hd, int64_t maxd, float qf, float kf, float off,
                                          float scale, float *out) {
  GRID_STRIDE(e, qs * ks * hd) {
    int64_t d = e % hd, p = e / hd, j = p % ks, i = p / ks;
    int64_t o = (int64_t)__fadd_rn(__fsub_rn(__fmul_rn((float)i, qf), __fmul_rn((float)j, kf)), off);
    if (o < 0 || o >= maxd) {  // cannot happen (the CPU twin asserts it); make it visible
      out[e] = NAN;
      continue;
    }
    if (L == maxd) {
      out[e] = table[o * hd + d];
      continue;
    }
    float src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)o, 0.5f)), 0.5f);
    if (src < 0.0f) src = 0.0f;
    int64_t i0 = (int64_t)src;
    int64_t i1 = i0 + (i0 < L - 1 ? 1 : 0);
    float l1 = __fsub_rn(src, (float)i0);
    if (l1 < 0.0f) l1 = 0.0f;
    if (l1 > 1.0f) l1 = 1.0f;
    float l0 = __fsub_rn(1.0f, l1);
    out[e] = __fadd_rn(__fmul_rn(l0, table[i0 * hd + d]), __fmul_rn(l1, table[i1 * hd + d]));
  }
}

// The CPU's dot8: eight lane sums, combined pairwise, then the tail: bit-identical.
static __device__ float dot8(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] = __fadd_rn(acc[l], __fmul_rn(a[i + l], b[i + l]));
  float s = __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[1]), __fadd_rn(acc[2], acc[3])),
                      __fadd_rn(__fadd_rn(acc[4], acc[5]), __fadd_rn(acc[6], acc[7])));
  for (; i < n; i++) s = __fadd_rn(s, __fmul_rn(a[i], b[i]));
  return s;
}

// One block per score row. rel (dynamic shared): qh + qw floats, the row's q . Rh and q . Rw.
// The barriers inside block_max / block_sum separate one row's reads of rel from the next row's
// writes.
static __global__ void attn_softmax_kernel(int64_t rows, int64_t row0, int64_t qh, int64_t qw,
                                           int64_t ld, const float *q, const float *Rh,
                                           const float *Rw, int64_t hd, float *S) {
  extern __shared__ float rel[];
  __shared__ double shd[REDUCE_THREADS];
  __shared__ float shf[REDUCE_THREADS];
  int64_t T = qh * qw;
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    int64_t g = row0 + i, t = g % T;
    float *s = S + i * T;
    if (Rh) {
      const float *qt = q + g * ld;
      int64_t ty = t / qw, tx = t % qw;
      for (int64_t j = threadIdx.x; j < qh + qw; j += blockDim.x)
        rel[j] = j < qh ? dot8(qt, Rh + (ty * qh + j) * hd, hd)
                        : dot8(qt, Rw + (tx * qw + (j - qh)) * hd, hd);
      __syncthreads();
      for (int64_t j = threadIdx.x; j < T; j += blockDim.x)
        s[j] = __fadd_rn(__fadd_rn(s[j], rel[j / qw]), rel[qh + j % qw]);
    }
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) m = fmaxf(m, s[j]);
    m = block_max(m, shf);
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) {
      float e = expf(__fsub_rn(s[j], m));
      s[j] = e;
      sum = __dadd_rn(sum, (double)e);
    }
    sum = block_sum(sum, shd);
    float inv = (float)(1.0 / sum);
    for (int64_t j = threadIdx.x; j < T; j += blockDim.x) s[j] = __fmul_rn(s[j], inv);
  }
}

extern "C" void vit_patch_tokens_cuda(int64_t B, int64_t C, int64_t T, const float *pe,
                                      const float *pos, float *x, cudaStream_t stream) {
  if (B * C * T <= 0) return;
  patch_tokens_kernel<<<LAUNCH(B * T * C)>>>(B, C, T, pe, pos, x);
  cudaLaunchCheck();
}

extern "C" void vit_tokens_to_nchw_cuda(int64_t B, int64_t T, int64_t C, const float *x, float *y,
                                        cudaStream_t stream) {
  if (B * C * T <= 0) return;
  tokens_to_nchw_kernel<<<LAUNCH(B * C * T)>>>(B, T, C, x, y);
  cudaLaunchCheck();
}

extern "C" void vit_layer_norm_rows_cuda(int64_t rows, int64_t C, float eps, const float *x,
                                         const float *g, const float *b, float *y,
                                         cudaStream_t stream) {
  if (rows <= 0 || C <= 0) return;
  layer_norm_rows_kernel<<<row_blocks(rows), REDUCE_THREADS, 0, stream>>>(rows, C, eps, x, g, b,
                                                                          y);
  cudaLaunchCheck();
}

extern "C" void vit_bias_rows_cuda(int64_t rows, int64_t cols, const float *b, float *y,
                                   cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  bias_rows_kernel<<<LAUNCH(rows * cols)>>>(rows, cols, b, y);
  cudaLaunchCheck();
}

extern "C" void vit_window_partition_cuda(int64_t B, int64_t gh, int64_t gw, int64_t C, int64_t ws,
                                          const float *x, float *xw, cudaStream_t stream) {
  masa_assert(ws > 0);
  int64_t nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws, n = B * nwh * nww * ws * ws * C;
  if (n <= 0) return;
  window_partition_kernel<<<LAUNCH(n)>>>(B, gh, gw, C, ws, nwh, nww, x, xw);
  cudaLaunchCheck();
}

extern "C" void vit_window_unpartition_add_cuda(int64_t B, int64_t gh, int64_t gw, int64_t C,
                                                int64_t ws, const float *xw, float *x,
                                                cudaStream_t stream) {
  masa_assert(ws > 0);
  int64_t nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws, n = B * gh * gw * C;
  if (n <= 0) return;
  window_unpartition_add_kernel<<<LAUNCH(n)>>>(B, gh, gw, C, ws, nwh, nww, xw, x);
  cudaLaunchCheck();
}

extern "C" void vit_get_rel_pos_cuda(int64_t qs, int64_t ks, const float *table, int64_t L,
                                     int64_t hd, float *out, cudaStream_t stream) {
  if (qs * ks * hd <= 0) return;
  int64_t maxd = 2 * (qs > ks ? qs : ks) - 1;
  float scale = (float)L / (float)maxd;
  float qf = (float)fmax((double)ks / (double)qs, 1.0), kf = (float)fmax((double)qs / (double)ks, 1.0);
  float off = (float)((double)(ks - 1) * fmax((double)qs / (double)ks, 1.0));
  get_rel_pos_kernel<<<LAUNCH(qs * ks * hd)>>>(qs, ks, table, L, hd, maxd, qf, kf, off, scale,
                                               out);
  cudaLaunchCheck();
}

extern "C" void vit_attn_softmax_cuda(int64_t rows, int64_t row0, int64_t qh, int64_t qw,
                                      int64_t ld, const float *q, const float *Rh,
                                      const float *Rw, int64_t hd, float *S, cudaStream_t stream) {
  masa_assert(qh > 0 && qw > 0 && qh <= 512 && qw <= 512);  // VIT_MAX_SIDE (ops/vit_ops.h)
  masa_assert((Rh == NULL) == (Rw == NULL));
  if (rows <= 0) return;
  size_t shmem = Rh ? (size_t)(qh + qw) * sizeof(float) : 0;
  attn_softmax_kernel<<<row_blocks(rows), REDUCE_THREADS, shmem, stream>>>(rows, row0, qh, qw,
                                                                           ld, q, Rh, Rw, hd, S);
  cudaLaunchCheck();
}

extern "C" void vit_gemm_batched_cuda(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                      float alpha, const float *a, int64_t lda, int64_t stride_a,
                                      const float *b, int64_t ldb, int64_t stride_b, float beta,
                                      float *c, int64_t ldc, int64_t stride_c, int64_t batch,
                                      cudaStream_t stream) {
  if (m == 0 || n == 0 || batch == 0) return;
  masa_assert(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
              ldc <= INT_MAX && batch <= INT_MAX);
  masa_gemm_strided_batched_ex(stream, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                               trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, alpha,
                               b, (int)ldb, (long long)stride_b, a, (int)lda, (long long)stride_a,
                               beta, c, (int)ldc, (long long)stride_c, (int)batch);
}
