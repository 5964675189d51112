// For the files that implement dispatchers (ops/dispatch.c, ops/dispatch_vit.c,
// train/dispatch_train.c) only: the one switch that picks a twin. Not a public header.
#ifndef MASA_DISPATCH_IMPL_H
#define MASA_DISPATCH_IMPL_H

#include "core/check.h"
#include "core/device.h"

#ifdef MASA_HAVE_CUDA
#include "kernels/kernels.h"
#define STREAM(d) ((cudaStream_t)(d)->stream)
#define ON_CUDA(d, call) call
#else
#define ON_CUDA(d, call) masa_die(__FILE__, __LINE__, #call, "device", "this build has no CUDA")
#endif

// Runs cpu_call on host memory (the guard device's memory opened for the call), or cuda_call.
#define DISPATCH(d, cpu_call, cuda_call)            \
  do {                                              \
    switch ((d)->kind) {                            \
      case DEV_CPU: cpu_call; break;                \
      case DEV_GUARD:                               \
        dev_guard_open();                           \
        cpu_call;                                   \
        dev_guard_close();                          \
        break;                                      \
      case DEV_CUDA: ON_CUDA(d, cuda_call); break;  \
    }                                               \
  } while (0)

#endif
