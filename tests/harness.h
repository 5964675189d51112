// Test harness shared by the C tests: comparisons with stated tolerances, oracle loading from the
// HDF5 files written by the PyTorch scripts, finite-difference gradient checks, and a summary
// whose exit status is non-zero whenever any check failed.
#ifndef MASA_TEST_HARNESS_H
#define MASA_TEST_HARNESS_H

#include <stdint.h>

#include "core/h5io.h"
#include "core/rng.h"
#include "core/tensor.h"

// Starts a test program: prints its name and the seed (MASA_SEED overrides `default_seed`).
uint64_t test_begin(const char *name, uint64_t default_seed);
// Prints a summary; returns the process exit status (0 only if every check passed).
int test_end(void);

// Element-wise |got - ref| <= atol + rtol * |ref|, NaN/Inf in got where ref is finite fails.
// Prints one line: what, n, max abs err, max rel err, worst "% of threshold", PASS/FAIL.
// `why` states the reason for the tolerance (printed on failure). Returns 1 on pass.
int check_close(const char *what, const float *got, const float *ref, int64_t n, double atol,
                double rtol, const char *why);
int check_true(const char *what, int cond);
// Checks that `guard` floats after buf[n] still hold the sentinel (out-of-bounds writes).
#define TEST_SENTINEL (-12345.678f)
float *test_alloc_guarded(int64_t n, int64_t guard);  // buf with sentinels after n elements
int check_guard(const char *what, const float *buf, int64_t n, int64_t guard);

// Oracle files: opens path or fails the test (exits 1) with the h5io error.
h5file *oracle_open(const char *path);
// Reads a dataset, exiting with a clear message if missing or of unexpected shape.
float *oracle_read(h5file *f, const char *name, int ndim, const int64_t *shape);
// Reads a dataset of any shape; *numel receives its size.
float *oracle_read_any(h5file *f, const char *name, int64_t *numel, int *ndim, int64_t *shape);

// Finite-difference check of a backward. f evaluates a scalar L(x) (in double); the analytic
// gradient of L w.r.t. x (n floats) is grad. Checks `samples` random coordinates (plus a random
// direction) with central differences of step eps:
//   |fd - grad| <= atol + rtol * |fd|.
// skip(ctx, i) may reject coordinates near kinks (NULL: none). x is restored on return.
typedef double (*fd_loss_fn)(void *ctx);
typedef int (*fd_skip_fn)(void *ctx, int64_t i);
int check_grad_fd(const char *what, float *x, int64_t n, const float *grad, fd_loss_fn f,
                  void *ctx, int samples, float eps, double atol, double rtol, uint64_t seed,
                  fd_skip_fn skip);
// sum(y * r) in double, the usual scalar for a backward test with upstream gradient r.
double dot_f64(const float *y, const float *r, int64_t n);

#endif
