// Device management helpers and the cuBLAS handles (one FP32 pedantic handle per process, and one
// for bf16 GEMMs; each created on first use).
#include <stdio.h>

#include "cuda_check.h"
#include "kernels.h"

extern "C" const char *masa_cublas_status_string(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "unknown cuBLAS status";
  }
}

extern "C" int cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

extern "C" void cuda_device_describe(char *buf, int n) {
  cudaDeviceProp p;
  int d = 0;
  cudaCheck(cudaGetDevice(&d));
  cudaCheck(cudaGetDeviceProperties(&p, d));
  snprintf(buf, (size_t)n, "cuda:%d %s (sm_%d%d, %.1f GiB)", d, p.name, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

extern "C" void *cuda_alloc(size_t bytes) {
  void *p = NULL;
  cudaCheck(cudaMalloc(&p, bytes ? bytes : 1));
  return p;
}
extern "C" void cuda_free(void *p) { cudaCheck(cudaFree(p)); }
extern "C" void cuda_upload(void *dst, const void *src, size_t bytes) {
  cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
extern "C" void cuda_download(void *dst, const void *src, size_t bytes) {
  cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
extern "C" void cuda_sync(void) { cudaCheck(cudaDeviceSynchronize()); }

extern "C" void cuda_library_versions(char *buf, int n) {
  int rt = 0, nccl = 0;
  cudaCheck(cudaRuntimeGetVersion(&rt));
  ncclCheck(ncclGetVersion(&nccl));
  size_t cudnn = cudnnGetVersion();
  int cublas_major = 0, cublas_minor = 0;
  cublasCheck(cublasGetProperty(MAJOR_VERSION, &cublas_major));
  cublasCheck(cublasGetProperty(MINOR_VERSION, &cublas_minor));
  snprintf(buf, (size_t)n, "CUDA runtime %d.%d, cuBLAS %d.%d, cuDNN %zu.%zu.%zu, NCCL %d.%d.%d",
           rt / 1000, (rt % 1000) / 10, cublas_major, cublas_minor, cudnn / 10000, (cudnn / 100) % 100,
           cudnn % 100, nccl / 10000, (nccl / 100) % 100, nccl % 100);
}

static cublasHandle_t g_cublas;

extern "C" cublasHandle_t masa_cublas(cudaStream_t stream) {
  if (!g_cublas) {
    cublasCheck(cublasCreate(&g_cublas));
    cublasCheck(cublasSetMathMode(g_cublas, CUBLAS_PEDANTIC_MATH));
  }
  cublasCheck(cublasSetStream(g_cublas, stream));
  return g_cublas;
}

// The bf16 GEMMs' handle (kernels/precision.cu): default math lets cublasGemmEx use the tensor
// cores for bf16 operands; reduced-precision split-K reductions stay off, so every partial sum
// is float32 like the accumulation itself. A separate handle so the FP32 one stays pedantic.
static cublasHandle_t g_cublas_bf16;

extern "C" cublasHandle_t masa_cublas_bf16(cudaStream_t stream) {
  if (!g_cublas_bf16) {
    cublasCheck(cublasCreate(&g_cublas_bf16));
    cublasCheck(cublasSetMathMode(
        g_cublas_bf16,
        (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  }
  cublasCheck(cublasSetStream(g_cublas_bf16, stream));
  return g_cublas_bf16;
}

extern "C" void *cuda_workspace_get(cuda_workspace *w, size_t bytes, cudaStream_t stream) {
  int dev = 0;
  cudaCheck(cudaGetDevice(&dev));
  if (w->p && w->device != dev)
    masa_die(__FILE__, __LINE__, w->name, "masa",
             "workspace belongs to another CUDA device (one device per process)");
  if (w->used && stream != w->stream) cudaCheck(cudaDeviceSynchronize());
  if (!w->p || bytes > w->bytes) {
    cuda_workspace_release(w);
    size_t cap = (size_t)1 << 20;
    while (cap < bytes) cap *= 2;  // grow by >= 2x: resizes are rare
    cudaCheck(cudaMalloc(&w->p, cap));
    w->bytes = cap;
    w->device = dev;
  }
  w->stream = stream;
  w->used = 1;
  return w->p;
}

extern "C" void cuda_workspace_release(cuda_workspace *w) {
  if (!w->p) return;
  cudaCheck(cudaDeviceSynchronize());  // queued work may still use it
  cudaCheck(cudaFree(w->p));
  w->p = NULL;
  w->bytes = 0;
  w->used = 0;
}
