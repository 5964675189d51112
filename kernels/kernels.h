// CUDA twins of the CPU ops (csrc/ops/): same name stem, same arguments (device pointers), plus a
// trailing stream. Semantics are those documented for the CPU op, which is the reference; the
// GPU check (`masa check`) compares every twin against it.
#ifndef MASA_KERNELS_H
#define MASA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Number of usable CUDA devices (0 when there is no driver or no device; never exits).
int cuda_device_count(void);
// Name and compute capability of device 0, for reports.
void cuda_device_describe(char *buf, int n);

// "CUDA runtime X, cuBLAS Y, cuDNN Z, NCCL W" (library versions; needs no device).
void cuda_library_versions(char *buf, int n);

void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
void cuda_upload(void *dst, const void *src, size_t bytes);
void cuda_download(void *dst, const void *src, size_t bytes);
void cuda_sync(void);

// Activations (ops/activation.h).
void relu_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream);
void relu_backward_cuda(int64_t n, const float *y, const float *dy, float *dx, cudaStream_t stream);

// Linear through cuBLAS (ops/conv.h): y = x w^T + b; backward accumulates.
void linear_forward_cuda(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                         const float *b, float *y, cudaStream_t stream);
void linear_backward_cuda(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
