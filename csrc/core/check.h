// Checked calls: every library call goes through one of these. On failure they print
// file:line, the failing call and the library's own message, then exit non-zero.
// CUDA / cuBLAS / cuDNN / NCCL variants live in kernels/cuda_check.h (they need those headers);
// MPI in csrc/core/dist.h once distributed training lands.
#ifndef MASA_CHECK_H
#define MASA_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASA_EXIT_FAILURE 1
#define MASA_EXIT_NO_GPU 3   // `masa check` on a machine without a GPU

#ifdef __cplusplus
extern "C" {
#endif

void masa_die(const char *file, int line, const char *call, const char *lib, const char *msg)
    __attribute__((noreturn));

// malloc/calloc/fopen/fread/fwrite wrappers: never return on failure.
void *masa_malloc_checked(size_t n, const char *file, int line);
void *masa_calloc_checked(size_t n, size_t sz, const char *file, int line);
FILE *masa_fopen_checked(const char *path, const char *mode, const char *file, int line);
void masa_fread_checked(void *p, size_t sz, size_t n, FILE *f, const char *file, int line);
void masa_fwrite_checked(const void *p, size_t sz, size_t n, FILE *f, const char *file, int line);
void masa_fclose_checked(FILE *f, const char *file, int line);

#ifdef __cplusplus
}
#endif

#define mallocCheck(n) masa_malloc_checked((n), __FILE__, __LINE__)
#define callocCheck(n, sz) masa_calloc_checked((n), (sz), __FILE__, __LINE__)
#define fopenCheck(path, mode) masa_fopen_checked((path), (mode), __FILE__, __LINE__)
#define freadCheck(p, sz, n, f) masa_fread_checked((p), (sz), (n), (f), __FILE__, __LINE__)
#define fwriteCheck(p, sz, n, f) masa_fwrite_checked((p), (sz), (n), (f), __FILE__, __LINE__)
#define fcloseCheck(f) masa_fclose_checked((f), __FILE__, __LINE__)

// HDF5 calls return a negative value on error; the HDF5 error stack is printed by masa_die.
#define hdf5Check(call)                                                                  \
  do {                                                                                   \
    if ((long long)(call) < 0) masa_die(__FILE__, __LINE__, #call, "HDF5", "call failed"); \
  } while (0)

// Internal invariants (not input validation: bad input gets a message naming the input).
#define masa_assert(cond)                                                                \
  do {                                                                                   \
    if (!(cond)) masa_die(__FILE__, __LINE__, #cond, "assert", "invariant violated");   \
  } while (0)

#endif
