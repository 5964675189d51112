// `masa check`: the GPU check. Every CUDA op runs on random inputs (odd shapes included) and is
// compared with its CPU twin, the reference; outputs are surrounded by guard regions that must
// survive. Prints a table (op, max abs err, max rel err, tolerance, pass) and exits non-zero on
// any failure, or with MASA_EXIT_NO_GPU (3) when this machine has no usable GPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "ops/ops.h"

#ifdef MASA_HAVE_CUDA
#include "kernels.h"

#include "cli/gpu_check.h"

// Compares got (with GUARD sentinel floats after n) against ref; prints one table row.
void gpu_check_compare(check_state *st, const char *op, const float *got, const float *ref, int64_t n,
                    double atol, double rtol) {
  double max_abs = 0, max_rel = 0;
  int ok = 1;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - (double)ref[i]);
    if (!(e <= atol + rtol * fabs((double)ref[i]))) ok = 0;
    if (e > max_abs || e != e) max_abs = e;
    if (ref[i] != 0 && e / fabs((double)ref[i]) > max_rel) max_rel = e / fabs((double)ref[i]);
  }
  int guard_ok = 1;
  for (int64_t i = n; i < n + GUARD; i++)
    if (got[i] != SENTINEL) guard_ok = 0;
  st->total++;
  if (!ok || !guard_ok) st->failures++;
  printf("%-40s %10lld %11.3g %11.3g %9.1g+%.1g*|ref| %s%s\n", op, (long long)n, max_abs, max_rel,
         atol, rtol, ok && guard_ok ? "pass" : "FAIL", guard_ok ? "" : " (guard overwritten)");
}

// Device buffer of n floats followed by GUARD sentinels, initialised from host (or zero).
float *gpu_check_dev_guarded(const float *host, int64_t n) {
  size_t bytes = (size_t)(n + GUARD) * sizeof(float);
  float *tmp = mallocCheck(bytes);
  for (int64_t i = 0; i < n; i++) tmp[i] = host ? host[i] : 0.0f;
  for (int64_t i = n; i < n + GUARD; i++) tmp[i] = SENTINEL;
  float *d = cuda_alloc(bytes);
  cuda_upload(d, tmp, bytes);
  free(tmp);
  return d;
}

float *gpu_check_host_copy(const float *dev, int64_t n) {
  size_t bytes = (size_t)(n + GUARD) * sizeof(float);
  float *h = mallocCheck(bytes);
  cuda_sync();
  cuda_download(h, dev, bytes);
  return h;
}

float *gpu_check_random(int64_t n, uint64_t seed, uint64_t stream) {
  float *p = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(float));
  rng_fill_uniform(p, n, -1.0f, 1.0f, seed, stream);
  return p;
}

static void check_relu(check_state *st, int64_t n, uint64_t seed) {
  float *x = gpu_check_random(n, seed, 1), *dy = gpu_check_random(n, seed, 2), *dx0 = gpu_check_random(n, seed, 3);
  float *y = mallocCheck((size_t)(n + 1) * sizeof(float));
  float *dx = mallocCheck((size_t)(n + 1) * sizeof(float));
  memcpy(dx, dx0, (size_t)n * sizeof(float));
  relu_forward_cpu(n, x, y);
  relu_backward_cpu(n, y, dy, dx);  // accumulates onto dx0
  float *dX = gpu_check_dev_guarded(x, n), *dY = gpu_check_dev_guarded(NULL, n), *ddY = gpu_check_dev_guarded(dy, n),
        *ddX = gpu_check_dev_guarded(dx0, n);
  relu_forward_cuda(n, dX, dY, 0);
  relu_backward_cuda(n, dY, ddY, ddX, 0);
  char name[80];
  float *h = gpu_check_host_copy(dY, n);
  snprintf(name, sizeof name, "relu_forward n=%lld", (long long)n);
  gpu_check_compare(st, name, h, y, n, 0, 0);  // exact: a comparison and a copy
  free(h);
  h = gpu_check_host_copy(ddX, n);
  snprintf(name, sizeof name, "relu_backward n=%lld (accumulate)", (long long)n);
  gpu_check_compare(st, name, h, dx, n, 0, 0);  // exact: one float add per element, same order
  free(h);
  cuda_free(dX), cuda_free(dY), cuda_free(ddY), cuda_free(ddX);
  free(x), free(dy), free(dx0), free(y), free(dx);
}

static void check_linear(check_state *st, int64_t n, int64_t in, int64_t out, uint64_t seed) {
  float *x = gpu_check_random(n * in, seed, 10), *w = gpu_check_random(out * in, seed, 11), *b = gpu_check_random(out, seed, 12);
  float *dy = gpu_check_random(n * out, seed, 13);
  float *y = callocCheck((size_t)(n * out + 1), sizeof(float));
  float *dx = callocCheck((size_t)(n * in + 1), sizeof(float));
  float *dw = callocCheck((size_t)(out * in + 1), sizeof(float));
  float *db = callocCheck((size_t)(out + 1), sizeof(float));
  linear_forward_cpu(n, in, out, x, w, b, y);
  linear_backward_cpu(n, in, out, x, w, dy, dx, dw, db);
  float *dX = gpu_check_dev_guarded(x, n * in), *dW = gpu_check_dev_guarded(w, out * in), *dB = gpu_check_dev_guarded(b, out);
  float *dY = gpu_check_dev_guarded(NULL, n * out), *ddY = gpu_check_dev_guarded(dy, n * out);
  float *ddX = gpu_check_dev_guarded(NULL, n * in), *ddW = gpu_check_dev_guarded(NULL, out * in), *ddB = gpu_check_dev_guarded(NULL, out);
  linear_forward_cuda(n, in, out, dX, dW, dB, dY, 0);
  linear_backward_cuda(n, in, out, dX, dW, ddY, ddX, ddW, ddB, 0);
  // FP32 GEMMs summing up to max(in, n) products of |v| <= 1 in a different order than OpenBLAS:
  // rounding grows ~ sqrt(K) * 2^-24 * K; 1e-4 absolute + 1e-4 relative covers K <= 4096.
  double atol = 1e-4, rtol = 1e-4;
  char name[96];
  float *h;
  snprintf(name, sizeof name, "linear_forward %lldx%lld->%lld", (long long)n, (long long)in, (long long)out);
  gpu_check_compare(st, name, h = gpu_check_host_copy(dY, n * out), y, n * out, atol, rtol), free(h);
  snprintf(name, sizeof name, "linear_backward dx %lldx%lld->%lld", (long long)n, (long long)in, (long long)out);
  gpu_check_compare(st, name, h = gpu_check_host_copy(ddX, n * in), dx, n * in, atol, rtol), free(h);
  snprintf(name, sizeof name, "linear_backward dw %lldx%lld->%lld", (long long)n, (long long)in, (long long)out);
  gpu_check_compare(st, name, h = gpu_check_host_copy(ddW, out * in), dw, out * in, atol, rtol), free(h);
  snprintf(name, sizeof name, "linear_backward db %lldx%lld->%lld", (long long)n, (long long)in, (long long)out);
  gpu_check_compare(st, name, h = gpu_check_host_copy(ddB, out), db, out, atol, rtol), free(h);
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(ddY);
  cuda_free(ddX), cuda_free(ddW), cuda_free(ddB);
  free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}
#endif

int cmd_check(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  char *rest[64];
  int nrest = 0;
  if (argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK || nrest) {
    log_error("%s", nrest ? "usage: masa check [--threads N]" : masa_errmsg());
    config_free(&cfg);
    return MASA_EXIT_FAILURE;
  }
  config_free(&cfg);
#ifndef MASA_HAVE_CUDA
  fprintf(stderr, "masa check: this build has no CUDA kernels (built with -DMASA_CUDA=OFF)\n");
  return MASA_EXIT_NO_GPU;
#else
  if (cuda_device_count() == 0) {
    fprintf(stderr, "masa check: no CUDA device on this machine; nothing to compare\n");
    return MASA_EXIT_NO_GPU;
  }
  char dev[256];
  cuda_device_describe(dev, sizeof dev);
  uint64_t seed = rng_test_seed(20240601);
  printf("GPU check on %s, seed %llu (MASA_SEED overrides)\n\n", dev, (unsigned long long)seed);
  printf("%-40s %10s %11s %11s %17s %s\n", "op", "n", "max abs", "max rel", "tolerance", "result");
  check_state st = {0, 0};
  const int64_t relu_sizes[] = {1, 3, 1000, 1 << 20};
  for (int i = 0; i < 4; i++) check_relu(&st, relu_sizes[i], seed);
  check_linear(&st, 1, 7, 3, seed);
  check_linear(&st, 3, 256, 1024, seed);
  check_linear(&st, 512, 1024, 256, seed);
  gpu_check_ops1(&st, seed);  // activations, norms, resampling (cmd_check_ops1.c)
  gpu_check_ops2(&st, seed);  // roi_align, dcn, conv2d (cmd_check_ops2.c)
  printf("\n%d of %d checks passed\n", st.total - st.failures, st.total);
  return st.failures ? MASA_EXIT_FAILURE : 0;
#endif
}
