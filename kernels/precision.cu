// The GEMM precision switch: every cuBLAS GEMM on the training / inference path (conv.cu,
// dcn.cu, linear.cu, gemm.cu, vit.cu) goes through masa_gemm_ex / masa_gemm_strided_batched_ex,
// so the choice between the two modes is made here and nowhere else.
// - fp32 (default): cublasSgemm / cublasSgemmStridedBatched on the pedantic FP32 handle
//   (masa_cublas: no TF32), exactly the calls the op files made before this switch existed;
//   `masa check`'s op rows compare this mode with the CPU twins.
// - bf16 (cuda_set_precision(1)): like torch autocast for matmul / conv. Parameters, gradients,
//   optimizer state and activations stay float32 in memory; the two GEMM operands are rounded to
//   bfloat16 (round to nearest even, __float2bfloat16_rn) into a per-process scratch workspace
//   and multiplied on the tensor cores with float32 accumulation and a float32 C (cublasGemmEx:
//   A/B CUDA_R_16BF, C CUDA_R_32F, CUBLAS_COMPUTE_32F) on a second handle whose math mode allows
//   tensor cores but not reduced-precision split-K reductions. alpha and beta are applied in
//   float32 to the float32 C, so accumulation (beta = 1) loses nothing beyond the products.
// Operands are packed: only the elements the GEMM reads are converted (a sub-matrix with a wide
// leading dimension, e.g. conv's direct 1x1 path, converts just its columns), into a compact
// bf16 copy whose leading dimension is rounded up to 8 elements (16-byte columns for the tensor
// cores). A batch stride of 0 (an operand shared by the whole batch) is converted once.
// Workspace: one grow-only device buffer per process (never a cudaMalloc per call once it has
// reached the largest GEMM's size); it is used in stream order, and a call on a different stream
// than the previous one first waits for the device, so a GEMM still reading the buffer on the old
// stream is never overwritten. cuda_set_precision(0) releases it.
#include <cuda_bf16.h>
#include <limits.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

static int g_bf16;  // process-wide GEMM precision: 0 fp32, 1 bf16

static cuda_workspace g_ws = {NULL, 0, NULL, 0, 0, "bf16 GEMM workspace"};

extern "C" void cuda_set_precision(int bf16) {
  g_bf16 = bf16 ? 1 : 0;
  if (!g_bf16) cuda_workspace_release(&g_ws);
}

extern "C" int cuda_precision_bf16(void) { return g_bf16; }

extern "C" size_t cuda_bf16_workspace_bytes(void) { return g_ws.bytes; }

// At least `elems` bf16 elements of scratch, safe to overwrite by work queued on `stream`.
static __nv_bfloat16 *workspace(size_t elems, cudaStream_t stream) {
  // Never NULL, even for k == 0 (nothing to pack).
  return (__nv_bfloat16 *)cuda_workspace_get(&g_ws, elems * sizeof(__nv_bfloat16), stream);
}

// dst[b*dstride + j*ldd + i] = bf16_rn(src[b*sstride + j*lds + i]) for i < rows, j < cols,
// b < nb: the column-major operand (rows, cols) of each batch entry, packed.
static __global__ void pack_bf16_kernel(int64_t rows, int64_t cols, int64_t nb,
                                        const float *__restrict__ src, int64_t lds,
                                        int64_t sstride, __nv_bfloat16 *__restrict__ dst,
                                        int64_t ldd, int64_t dstride) {
  const int64_t per = rows * cols, total = per * nb;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = idx % rows, j = (idx / rows) % cols, b = idx / per;
    dst[b * dstride + j * ldd + i] = __float2bfloat16_rn(src[b * sstride + j * lds + i]);
  }
}

// One operand of a column-major GEMM: op(X) is (r, c) of the GEMM; the stored matrix is
// (rows, cols) = op N ? (r, c) : (c, r), leading dimension ld, batch stride `stride`.
typedef struct {
  int64_t rows, cols, ld, stride;  // source
  int64_t ldp, stridep, nb;        // packed: leading dimension, batch stride, entries converted
  size_t elems;                    // packed size in elements (multiple of 128: 256-byte offsets)
} operand;

static operand operand_of(cublasOperation_t op, int r, int c, int ld, long long stride,
                          int batch) {
  operand o;
  o.rows = op == CUBLAS_OP_N ? r : c;
  o.cols = op == CUBLAS_OP_N ? c : r;
  o.ld = ld;
  o.stride = stride;
  o.ldp = ((o.rows > 0 ? o.rows : 1) + 7) / 8 * 8;
  masa_assert(o.ldp <= INT_MAX && stride >= 0);
  o.nb = stride == 0 ? 1 : batch;  // stride 0: one matrix shared by all batch entries
  o.stridep = stride == 0 ? 0 : o.ldp * o.cols;
  o.elems = (size_t)((o.ldp * o.cols * o.nb + 127) / 128 * 128);
  return o;
}

static void pack(const operand *o, const float *src, __nv_bfloat16 *dst, cudaStream_t stream) {
  const int64_t total = o->rows * o->cols * o->nb;
  if (total == 0) return;
  pack_bf16_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(o->rows, o->cols, o->nb, src, o->ld,
                                                               o->stride, dst, o->ldp, o->stridep);
  cudaLaunchCheck();
}

// The bf16 path of both entry points; batch == 1 uses cublasGemmEx.
static void gemm_bf16(cudaStream_t stream, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                      int k, float alpha, const float *a, int lda, long long stride_a,
                      const float *b, int ldb, long long stride_b, float beta, float *c, int ldc,
                      long long stride_c, int batch) {
  const operand oa = operand_of(ta, m, k, lda, stride_a, batch);
  const operand ob = operand_of(tb, k, n, ldb, stride_b, batch);
  __nv_bfloat16 *ws = workspace(oa.elems + ob.elems, stream);
  __nv_bfloat16 *pa = ws, *pb = ws + oa.elems;
  pack(&oa, a, pa, stream);
  pack(&ob, b, pb, stream);
  cublasHandle_t h = masa_cublas_bf16(stream);
  if (batch == 1)
    cublasCheck(cublasGemmEx(h, ta, tb, m, n, k, &alpha, pa, CUDA_R_16BF, (int)oa.ldp, pb,
                             CUDA_R_16BF, (int)ob.ldp, &beta, c, CUDA_R_32F, ldc,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  else
    cublasCheck(cublasGemmStridedBatchedEx(
        h, ta, tb, m, n, k, &alpha, pa, CUDA_R_16BF, (int)oa.ldp, (long long)oa.stridep, pb,
        CUDA_R_16BF, (int)ob.ldp, (long long)ob.stridep, &beta, c, CUDA_R_32F, ldc, stride_c,
        batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

extern "C" void masa_gemm_ex(cudaStream_t stream, cublasOperation_t ta, cublasOperation_t tb,
                             int m, int n, int k, float alpha, const float *a, int lda,
                             const float *b, int ldb, float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return;
  if (!g_bf16) {
    cublasCheck(cublasSgemm(masa_cublas(stream), ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c,
                            ldc));
    return;
  }
  gemm_bf16(stream, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

extern "C" void masa_gemm_strided_batched_ex(cudaStream_t stream, cublasOperation_t ta,
                                             cublasOperation_t tb, int m, int n, int k,
                                             float alpha, const float *a, int lda,
                                             long long stride_a, const float *b, int ldb,
                                             long long stride_b, float beta, float *c, int ldc,
                                             long long stride_c, int batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  if (!g_bf16) {
    cublasCheck(cublasSgemmStridedBatched(masa_cublas(stream), ta, tb, m, n, k, &alpha, a, lda,
                                          stride_a, b, ldb, stride_b, &beta, c, ldc, stride_c,
                                          batch));
    return;
  }
  gemm_bf16(stream, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
            stride_c, batch);
}
