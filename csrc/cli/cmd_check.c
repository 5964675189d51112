// `masa check`: the GPU check. Every CUDA op runs on random inputs (odd shapes included) and is
// compared with its CPU twin, the reference; outputs are surrounded by guard regions that must
// survive. Prints a table (op, max abs err, max rel err, tolerance, pass) and exits non-zero on
// any failure, or with MASA_EXIT_NO_GPU (3) when this machine has no usable GPU. Then one full
// training step on the GPU against the CPU (cmd_check_step.c).
//   masa check [--device cuda:N]   the op table and the step on that GPU (default cuda:0)
//   masa check --device guard      only the step, on the guard device (core/device.h): runs
//                                  without a GPU, so the CPU test suite exercises this check
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

#include "cli/gpu_check.h"
#include "core/device.h"

#ifdef MASA_HAVE_CUDA
#include "kernels.h"

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

float *gpu_check_uniform(int64_t n, uint64_t seed, uint64_t stream, float lo, float hi) {
  float *p = gpu_check_random(n, seed, stream);
  for (int64_t i = 0; i < n; i++) p[i] = lo + (p[i] + 1.0f) * 0.5f * (hi - lo);
  return p;
}

float *gpu_check_copy(const float *src, int64_t n) {
  float *p = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(float));
  if (n > 0) memcpy(p, src, (size_t)n * sizeof(float));
  return p;
}

void gpu_check_cmp(check_state *st, const char *name, const float *dev, const float *ref,
                   int64_t n, double atol, double rtol) {
  float *h = gpu_check_host_copy(dev, n);
  gpu_check_compare(st, name, h, ref, n, atol, rtol);
  free(h);
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
  const char *dev_name = NULL;
  int bad = argc > 64 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK;
  if (!bad && nrest == 2 && !strcmp(rest[0], "--device")) dev_name = rest[1];
  else if (!bad && nrest) bad = 1;
  if (bad) {
    log_error("%s", nrest ? "usage: masa check [--device cuda:N|guard] [--threads N]" : masa_errmsg());
    config_free(&cfg);
    return MASA_EXIT_FAILURE;
  }
  config_free(&cfg);
  device target = {DEV_CUDA, 0, NULL};
  if (dev_name) {
    if (!strcmp(dev_name, "guard")) {
      target.kind = DEV_GUARD;
      uint64_t seed = rng_test_seed(20240601);
      printf("train-step check on the guard device, seed %llu (MASA_SEED overrides)\n\n",
             (unsigned long long)seed);
      printf("%-40s %10s %11s %11s %17s %s\n", "check", "n", "max abs", "rel err", "tolerance",
             "result");
      check_state st = {0, 0};
      gpu_check_train_step(&st, &target, seed);
      printf("\n%d of %d checks passed\n", st.total - st.failures, st.total);
      return st.failures ? MASA_EXIT_FAILURE : 0;
    }
    if (device_parse(dev_name, &target) != MASA_OK || target.kind != DEV_CUDA) {
      fprintf(stderr, "masa check: %s\n",
              target.kind == DEV_CUDA ? masa_errmsg() : "--device expects cuda, cuda:N or guard");
      return strncmp(dev_name, "cuda", 4) ? MASA_EXIT_FAILURE : MASA_EXIT_NO_GPU;
    }
  }
#ifndef MASA_HAVE_CUDA
  fprintf(stderr, "masa check: this build has no CUDA kernels (built with -DMASA_CUDA=OFF)\n");
  return MASA_EXIT_NO_GPU;
#else
  if (cuda_device_count() == 0) {
    fprintf(stderr, "masa check: no CUDA device on this machine; nothing to compare\n");
    return MASA_EXIT_NO_GPU;
  }
  device_activate(&target);
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
  gpu_check_ops2(&st, seed);  // roi_align, dcn, conv2d through im2col (cmd_check_ops2.c)
  gpu_check_cudnn(&st, seed); // conv2d through cuDNN, both modes (cmd_check_cudnn.c)
  gpu_check_ops3(&st, seed);  // elementwise glue, gemm, BN fold (cmd_check_ops3.c)
  gpu_check_sam(&st, seed);   // transposed conv, DyReLU (cmd_check_sam.c)
  gpu_check_vit(&st, seed);   // ViT row layer norm, attention (cmd_check_vit.c)
  gpu_check_optim(&st, seed); // SGD / AdamW updates, gradient norm and clipping (cmd_check_optim.c)
  gpu_check_rpn(&st, seed);   // RPN proposals: top-k, decode, NMS (cmd_check_rpn.c)
  gpu_check_bf16(&st, seed);  // every GEMM path in bf16 mode, loose tolerances (cmd_check_bf16.c)
  gpu_check_train_step(&st, &target, seed);  // one full training step vs the CPU (cmd_check_step.c)
  printf("\n%d of %d checks passed\n", st.total - st.failures, st.total);
  return st.failures ? MASA_EXIT_FAILURE : 0;
#endif
}
