// Checked calls for the CUDA libraries: file:line, the failing call, the library's message,
// non-zero exit. Every kernel launch is followed by cudaLaunchCheck(); with -DMASA_CUDA_SYNC_DEBUG
// it also synchronises so an asynchronous fault is reported at the launch that caused it.
#ifndef MASA_CUDA_CHECK_H
#define MASA_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

#include "core/check.h"

#ifdef __cplusplus
extern "C" {
#endif
const char *masa_cublas_status_string(cublasStatus_t s);
// The process's one cuBLAS handle (created on first use, FP32 pedantic math: no TF32, for
// parity with the CPU twins), bound to `stream`. Not thread-safe: one host thread drives the GPU.
cublasHandle_t masa_cublas(cudaStream_t stream);

// A grow-only device scratch buffer (kernels/runtime.cu), used in stream order: get() returns at
// least `bytes` (growing to a power of two of at least 1 MiB, the old buffer freed once the device
// is idle, so there is no cudaMalloc in steady state) that work queued on `stream` may overwrite;
// a call from another stream than the last first waits for the device. One CUDA device per
// process (a different current device is an error).
typedef struct {
  void *p;
  size_t bytes;
  cudaStream_t stream;
  int device, used;
  const char *name;  // for the error message
} cuda_workspace;
void *cuda_workspace_get(cuda_workspace *w, size_t bytes, cudaStream_t stream);
void cuda_workspace_release(cuda_workspace *w);  // waits for the device, frees
// The bf16 GEMM handle (default math: tensor cores, no reduced-precision reductions); used only
// by kernels/precision.cu.
cublasHandle_t masa_cublas_bf16(cudaStream_t stream);
// Every GEMM of the op files goes through these (kernels/precision.cu), column-major with the
// arguments of cublasSgemm / cublasSgemmStridedBatched: fp32 precision (the default) makes exactly
// that call on masa_cublas; bf16 precision (cuda_set_precision, kernels.h) rounds A and B to
// bfloat16 and multiplies with float32 accumulation into the float32 C. m == 0 or n == 0 (or
// batch == 0) is a no-op.
void masa_gemm_ex(cudaStream_t stream, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                  int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc);
void masa_gemm_strided_batched_ex(cudaStream_t stream, cublasOperation_t ta, cublasOperation_t tb,
                                  int m, int n, int k, float alpha, const float *a, int lda,
                                  long long stride_a, const float *b, int ldb, long long stride_b,
                                  float beta, float *c, int ldc, long long stride_c, int batch);
#ifdef __cplusplus
}
#endif

#define cudaCheck(call)                                                                   \
  do {                                                                                    \
    cudaError_t e_ = (call);                                                              \
    if (e_ != cudaSuccess) masa_die(__FILE__, __LINE__, #call, "CUDA", cudaGetErrorString(e_)); \
  } while (0)

#define cublasCheck(call)                                                                 \
  do {                                                                                    \
    cublasStatus_t s_ = (call);                                                           \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                      \
      masa_die(__FILE__, __LINE__, #call, "cuBLAS", masa_cublas_status_string(s_));       \
  } while (0)

#define cudnnCheck(call)                                                                  \
  do {                                                                                    \
    cudnnStatus_t s_ = (call);                                                            \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                       \
      masa_die(__FILE__, __LINE__, #call, "cuDNN", cudnnGetErrorString(s_));              \
  } while (0)

#define ncclCheck(call)                                                                   \
  do {                                                                                    \
    ncclResult_t r_ = (call);                                                             \
    if (r_ != ncclSuccess) masa_die(__FILE__, __LINE__, #call, "NCCL", ncclGetErrorString(r_)); \
  } while (0)

#ifdef MASA_CUDA_SYNC_DEBUG
#define cudaLaunchCheck()                  \
  do {                                     \
    cudaCheck(cudaGetLastError());         \
    cudaCheck(cudaDeviceSynchronize());    \
  } while (0)
#else
#define cudaLaunchCheck() cudaCheck(cudaGetLastError())
#endif

#endif
