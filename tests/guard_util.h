// Helpers for device-parity tests: run a code path on the cpu device and on the guard device
// (core/device.h) and require identical results. The guard device computes with the same CPU
// twins, so any difference, or a crash naming guard memory, means the path touched device memory
// from the host or forgot a copy: bitwise equality (atol 0) is the right tolerance.
#ifndef MASA_TEST_GUARD_UTIL_H
#define MASA_TEST_GUARD_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/check.h"
#include "core/device.h"
#include "core/tensor.h"
#include "harness.h"

static const device guard_dev = {DEV_GUARD, 0, NULL};

// A copy of host tensor h in arena a (on a's device).
static inline tensor guard_put(arena *a, const tensor *h) {
  tensor t = *h;
  t.owns = 0;
  int64_t n = tensor_numel(h);
  t.data = arena_floats(a, n);
  dev_upload(&a->dev, t.data, h->data, (size_t)n * sizeof(float));
  return t;
}

// Host copy (malloc'd) of n floats at device pointer p.
static inline float *guard_get(const device *d, const float *p, int64_t n) {
  float *h = mallocCheck((size_t)(n ? n : 1) * sizeof(float));
  dev_download(d, h, p, (size_t)n * sizeof(float));
  return h;
}

// Bitwise comparison of n floats on device d against host reference ref.
static inline int guard_check_same(const char *what, const device *d, const float *p,
                                   const float *ref, int64_t n) {
  float *h = guard_get(d, p, n);
  int ok = check_close(what, h, ref, n, 0.0, 0.0,
                       "guard device runs the same CPU twins: results must be bit-identical");
  free(h);
  return ok;
}

#endif
