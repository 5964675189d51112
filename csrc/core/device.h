// Where tensors live and which op twins run: the backend switch. Model code never tests the
// device itself; it allocates through the arena / param table (which know their device), moves
// data with the dev_* calls below and calls the dispatching ops (ops/dispatch.h).
//
// Devices:
// - cpu:   host memory, the CPU twins (the reference).
// - cuda:  device memory (cudaMalloc), the CUDA twins on `stream` (NULL: the default stream).
// - guard: a test device. Memory is host memory that is mprotect()ed to PROT_NONE whenever no op
//          is running, and the CPU twins compute. Any host code that reads or writes "device"
//          memory outside an op or a dev_* copy dies at once with a message naming the address,
//          so the CPU test suite proves that a code path would be correct on a real GPU (every
//          access goes through an op or an explicit copy), and results must equal the cpu
//          device's bit for bit.
#ifndef MASA_DEVICE_H
#define MASA_DEVICE_H

#include <stddef.h>

#include "core/config.h"

typedef enum { DEV_CPU = 0, DEV_CUDA = 1, DEV_GUARD = 2 } dev_kind;

typedef struct {
  dev_kind kind;
  int ordinal;   // CUDA device number
  void *stream;  // cudaStream_t for DEV_CUDA (NULL: default stream)
} device;

extern const device dev_cpu;

// "cpu" | "cuda" | "cuda:N" | "guard" -> *out. MASA_ERR naming the value when unknown, or when
// "cuda" is asked of a build without CUDA or a machine without a GPU.
int device_parse(const char *name, device *out);
// Makes `d` current for this thread (cudaSetDevice for DEV_CUDA; no-op otherwise).
void device_activate(const device *d);
const char *device_name(const device *d);  // "cpu", "cuda:0", "guard"
// 1 when host code may dereference this device's pointers (DEV_CPU only).
int dev_is_host(const device *d);
// GEMM precision of the process ("fp32" | "bf16"; kernels/precision.cu). fp32 (the default) is
// accepted on every device and restores pedantic FP32 cuBLAS GEMMs; bf16 (bf16 operands, float32
// accumulation, every tensor float32 in memory) needs a CUDA device: MASA_ERR on cpu / guard,
// whose CPU twins always compute in float32. MASA_ERR naming the value when unknown.
int device_set_precision(const device *d, const char *name);

void *dev_alloc(const device *d, size_t bytes);  // zeroed; bytes 0 gives a valid pointer
// Not initialised (host pages are not touched until used: activation arenas).
void *dev_alloc_uninit(const device *d, size_t bytes);
void dev_free(const device *d, void *p);
void dev_upload(const device *d, void *dst, const void *src_host, size_t bytes);
void dev_download(const device *d, void *dst_host, const void *src, size_t bytes);
void dev_copy(const device *d, void *dst, const void *src, size_t bytes);  // device to device
// rows x width bytes, with row pitches (cudaMemcpy2D semantics), device to device.
void dev_copy2d(const device *d, void *dst, size_t dpitch, const void *src, size_t spitch,
                size_t width, size_t rows);
void dev_zero(const device *d, void *p, size_t bytes);
// Waits for all work queued on d (no-op on host devices).
void dev_sync(const device *d);

// Page-locks host memory so uploads from it are DMA transfers that can run asynchronously (CUDA;
// a no-op on other devices). Unregister before freeing it.
void dev_host_register(const device *d, void *p, size_t bytes);
void dev_host_unregister(const device *d, void *p);

// Uploads on a side stream, overlapped with the compute stream's work: queue copies with
// dev_copier_upload (the host memory must stay untouched until the fence has been passed by the
// compute stream), then dev_copier_fence makes d's compute stream wait for them. On host
// devices the copies happen at once and the fence does nothing.
typedef struct dev_copier dev_copier;
dev_copier *dev_copier_create(const device *d);
void dev_copier_upload(dev_copier *c, void *dst, const void *src, size_t bytes);
void dev_copier_fence(dev_copier *c);
void dev_copier_destroy(dev_copier *c);

// device.* recipe keys: GEMM precision (fp32 | bf16), dense conv backend (auto | cudnn |
// im2col) and deterministic mode (no atomics or nondeterministic cuDNN algorithms in backward
// reductions where an alternative exists). device_apply_config sets them for device d (the
// process-wide CUDA switches; on cpu / guard only fp32 is accepted, the rest has no effect).
// MASA_ERR naming the key on a bad value.
extern const cfg_key device_schema[];
int device_apply_config(const device *d, const config *c);

// Guard device internals, for the op dispatch: open() makes all guard memory accessible until
// the matching close(). Calls nest.
void dev_guard_open(void);
void dev_guard_close(void);
// Number of bytes of guard memory currently allocated (tests check for leaks with it).
size_t dev_guard_bytes(void);

#endif
