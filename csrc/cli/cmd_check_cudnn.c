// GPU check, cuDNN convolutions: conv2d_forward_cudnn / conv2d_backward_cudnn
// (kernels/conv_cudnn.cu) against conv2d_forward_cpu / conv2d_backward_cpu, in both cuDNN modes
// (deterministic: heuristic GEMM-family algorithms; fast: the measured fastest, FFT / Winograd
// included). Odd shapes: batch 1 and 3, non-square maps and kernels, 1x1, 3x3, the ResNet stem's
// 7x7 stride 2 pad 3, dilation 2, groups 2 and 4, an FPN 256-channel 3x3. y starts as NaN (the
// forward must overwrite it), gradients start pre-filled (backward accumulates), and some rows pass
// NULL gradient pointers. A shape these rows use that cuDNN refuses is a FAIL: each is a shape the
// model runs. Deterministic mode must also repeat itself bit for bit.
// Tolerances: x, w, dy uniform in [-1, 1), so each output is a sum of T products of size <= 1
// (T = c_in/g*kh*kw for y, c_out/g*kh*kw for dx, n*ho*wo for dw) and the CPU (OpenBLAS) and cuDNN
// sum them in different orders; the two float rounding walks differ by ~1e-8*T typically, a few
// times that at the worst of ~1e5 elements: deterministic mode atol 2e-7*T + rtol 1e-5 (rtol for
// the ulps of the final add onto pre-filled values). FFT and Winograd transform the operands and
// round in the transformed domain: fast mode 10x (2e-6*T + 1e-4). dbias: double sums on both
// sides, one float cast and add: 1e-5 + 1e-6|ref|.
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "kernels.h"
#include "ops/ops.h"

enum { G_DX = 1, G_DW = 2, G_DB = 4, G_ALL = 7 };

// A row for "cuDNN handled this call" (it returned 1).
static void handled_row(check_state *st, const char *name, int ok) {
  st->total++;
  if (!ok) st->failures++;
  printf("%-40s %10s %11s %11s %17s %s\n", name, "-", "-", "-", "handled by cuDNN",
         ok ? "pass" : "FAIL (refused)");
}

static void conv_tag(const conv2d_desc *d, char *tag, size_t n) {
  snprintf(tag, n, "n%lld %lldx%lld c%lld->%lld k%lldx%lld s%lld,%lld p%lld,%lld d%lld,%lld g%lld",
           (long long)d->n, (long long)d->h, (long long)d->w, (long long)d->c_in,
           (long long)d->c_out, (long long)d->kh, (long long)d->kw, (long long)d->stride_h,
           (long long)d->stride_w, (long long)d->pad_h, (long long)d->pad_w, (long long)d->dil_h,
           (long long)d->dil_w, (long long)d->groups);
}

// Forward (with or without bias) and backward into the gradients named by `grads` (others NULL),
// in deterministic then fast mode, against the CPU.
static void check_cudnn_conv(check_state *st, conv2d_desc d, int bias, int grads, uint64_t seed) {
  const int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  const int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * (d.c_in / d.groups) * d.kh * d.kw;
  const int64_t ny = d.n * d.c_out * ho * wo;
  const double t_y = (double)(d.c_in / d.groups * d.kh * d.kw);
  const double t_dx = (double)(d.c_out / d.groups * d.kh * d.kw), t_dw = (double)(d.n * ho * wo);
  float *x = gpu_check_random(nx, seed, 400), *wt = gpu_check_random(nw, seed, 401);
  float *b = gpu_check_random(d.c_out, seed, 402), *dy = gpu_check_random(ny, seed, 403);
  float *dx0 = gpu_check_random(nx, seed, 404), *dw0 = gpu_check_random(nw, seed, 405);
  float *db0 = gpu_check_random(d.c_out, seed, 406);
  float *nan_y = mallocCheck((size_t)(ny > 0 ? ny : 1) * sizeof(float));
  for (int64_t i = 0; i < ny; i++) nan_y[i] = NAN;
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dw = gpu_check_copy(dw0, nw);
  float *db = gpu_check_copy(db0, d.c_out);
  conv2d_forward_cpu(&d, x, wt, bias ? b : NULL, y);
  conv2d_backward_cpu(&d, x, wt, dy, grads & G_DX ? dx : NULL, grads & G_DW ? dw : NULL,
                      grads & G_DB ? db : NULL);
  float *dX = gpu_check_dev_guarded(x, nx), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(b, d.c_out), *ddY = gpu_check_dev_guarded(dy, ny);
  char tag[112], name[160];
  conv_tag(&d, tag, sizeof tag);
  const int saved = cuda_deterministic();
  for (int det = 1; det >= 0; det--) {
    cuda_set_deterministic(det);
    const char *mode = det ? "det" : "fast";
    const double a = det ? 2e-7 : 2e-6, r = det ? 1e-5 : 1e-4;
    float *dY = gpu_check_dev_guarded(nan_y, ny);
    snprintf(name, sizeof name, "cudnn %s fwd%s %s", mode, bias ? "+bias" : "", tag);
    if (conv2d_forward_cudnn(&d, dX, dW, bias ? dB : NULL, dY, 0))
      gpu_check_cmp(st, name, dY, y, ny, a * t_y, r);
    else
      handled_row(st, name, 0);
    float *ddX = grads & G_DX ? gpu_check_dev_guarded(dx0, nx) : NULL;
    float *ddW = grads & G_DW ? gpu_check_dev_guarded(dw0, nw) : NULL;
    float *ddB = grads & G_DB ? gpu_check_dev_guarded(db0, d.c_out) : NULL;
    if (conv2d_backward_cudnn(&d, dX, dW, ddY, ddX, ddW, ddB, 0)) {
      if (ddX) {
        snprintf(name, sizeof name, "cudnn %s bwd dx (acc) %s", mode, tag);
        gpu_check_cmp(st, name, ddX, dx, nx, a * t_dx, r);
      }
      if (ddW) {
        snprintf(name, sizeof name, "cudnn %s bwd dw (acc) %s", mode, tag);
        gpu_check_cmp(st, name, ddW, dw, nw, a * t_dw, r);
      }
      if (ddB) {
        snprintf(name, sizeof name, "cudnn %s bwd db (acc) %s", mode, tag);
        gpu_check_cmp(st, name, ddB, db, d.c_out, 1e-5, 1e-6);
      }
    } else {
      snprintf(name, sizeof name, "cudnn %s bwd%s%s%s %s", mode, ddX ? " dx" : "",
               ddW ? " dw" : "", ddB ? " db" : "", tag);
      handled_row(st, name, 0);
    }
    cuda_free(dY);
    if (ddX) cuda_free(ddX);
    if (ddW) cuda_free(ddW);
    if (ddB) cuda_free(ddB);
  }
  cuda_set_deterministic(saved);
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(ddY);
  free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(db0), free(nan_y), free(y);
  free(dx), free(dw), free(db);
}

// Deterministic mode twice on the same inputs: y, dx, dw, db bit for bit the same.
static void check_cudnn_repeat(check_state *st, conv2d_desc d, uint64_t seed) {
  const int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  const int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * (d.c_in / d.groups) * d.kh * d.kw;
  const int64_t ny = d.n * d.c_out * ho * wo;
  float *x = gpu_check_random(nx, seed, 410), *wt = gpu_check_random(nw, seed, 411);
  float *b = gpu_check_random(d.c_out, seed, 412), *dy = gpu_check_random(ny, seed, 413);
  float *dx0 = gpu_check_random(nx, seed, 414), *dw0 = gpu_check_random(nw, seed, 415);
  float *db0 = gpu_check_random(d.c_out, seed, 416);
  float *dX = gpu_check_dev_guarded(x, nx), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(b, d.c_out), *ddY = gpu_check_dev_guarded(dy, ny);
  float *first[4] = {NULL, NULL, NULL, NULL};
  const int64_t len[4] = {ny, nx, nw, d.c_out};
  const char *what[4] = {"y", "dx", "dw", "db"};
  char tag[112], name[160];
  conv_tag(&d, tag, sizeof tag);
  const int saved = cuda_deterministic();
  cuda_set_deterministic(1);
  int handled = 1;
  for (int run = 0; run < 2; run++) {
    float *out[4] = {gpu_check_dev_guarded(NULL, ny), gpu_check_dev_guarded(dx0, nx),
                     gpu_check_dev_guarded(dw0, nw), gpu_check_dev_guarded(db0, d.c_out)};
    handled = handled && conv2d_forward_cudnn(&d, dX, dW, dB, out[0], 0) &&
              conv2d_backward_cudnn(&d, dX, dW, ddY, out[1], out[2], out[3], 0);
    for (int k = 0; k < 4; k++) {
      if (handled && run == 0) first[k] = gpu_check_host_copy(out[k], len[k]);
      if (handled && run == 1) {
        snprintf(name, sizeof name, "cudnn det repeat %s %s", what[k], tag);
        // exact: the same algorithm on the same data
        gpu_check_cmp(st, name, out[k], first[k], len[k], 0, 0);
      }
      cuda_free(out[k]);
    }
  }
  if (!handled) {
    snprintf(name, sizeof name, "cudnn det repeat %s", tag);
    handled_row(st, name, 0);
  }
  cuda_set_deterministic(saved);
  for (int k = 0; k < 4; k++) free(first[k]);
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(ddY);
  free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(db0);
}

void gpu_check_cudnn(check_state *st, uint64_t seed) {
  check_cudnn_conv(st, conv2d_make(1, 3, 7, 9, 5, 3, 1, 1, 1, 1), 1, G_ALL, seed);
  check_cudnn_conv(st, conv2d_make(3, 4, 10, 7, 6, 3, 2, 1, 1, 1), 0, G_ALL, seed);
  check_cudnn_conv(st, conv2d_make(3, 4, 10, 7, 6, 3, 2, 1, 1, 1), 0, G_DX, seed);  // dw, db NULL
  check_cudnn_conv(st, conv2d_make(2, 6, 9, 8, 4, 3, 2, 2, 2, 2), 1, G_ALL, seed);  // dil 2, g 2
  check_cudnn_conv(st, conv2d_make(2, 6, 9, 8, 4, 3, 2, 2, 2, 2), 1, G_DW | G_DB, seed);  // no dx
  check_cudnn_conv(st, conv2d_make(3, 16, 11, 14, 8, 3, 1, 2, 2, 1), 1, G_ALL, seed);  // dil 2, s 1
  check_cudnn_conv(st, conv2d_make(3, 8, 5, 7, 6, 1, 1, 0, 1, 1), 1, G_ALL, seed);    // 1x1
  check_cudnn_conv(st, conv2d_make(3, 8, 5, 7, 6, 1, 1, 0, 1, 1), 1, G_DB, seed);     // dbias only
  check_cudnn_conv(st, conv2d_make(2, 8, 6, 9, 12, 1, 2, 0, 1, 4), 1, G_ALL, seed);   // 1x1 s2 g4
  // ResNet stem: 7x7 stride 2 pad 3, no bias; batch 1 and 3.
  check_cudnn_conv(st, conv2d_make(1, 3, 37, 45, 8, 7, 2, 3, 1, 1), 0, G_ALL, seed);
  // dx NULL, as for the image itself
  check_cudnn_conv(st, conv2d_make(3, 3, 64, 50, 16, 7, 2, 3, 1, 1), 0, G_DW, seed);
  // Non-square kernels, strides, pads and dilations.
  conv2d_desc nsq = conv2d_make(3, 5, 11, 6, 7, 3, 1, 1, 1, 1);
  nsq.kw = 1, nsq.pad_w = 0, nsq.stride_w = 2, nsq.dil_h = 2, nsq.pad_h = 2;
  check_cudnn_conv(st, nsq, 1, G_ALL, seed);
  conv2d_desc row = conv2d_make(2, 5, 9, 12, 4, 1, 1, 0, 1, 1);
  row.kw = 7, row.pad_w = 3, row.stride_h = 2;
  check_cudnn_conv(st, row, 0, G_ALL, seed);
  // Wider layers: K = 576 and an FPN output conv (256 -> 256, 3x3, K = 2304).
  check_cudnn_conv(st, conv2d_make(3, 64, 40, 48, 96, 3, 1, 1, 1, 1), 1, G_ALL, seed);
  check_cudnn_conv(st, conv2d_make(1, 256, 13, 17, 256, 3, 1, 1, 1, 1), 1, G_ALL, seed);
  check_cudnn_conv(st, conv2d_make(2, 256, 13, 17, 256, 1, 1, 0, 1, 1), 1, G_ALL, seed);
  check_cudnn_repeat(st, conv2d_make(3, 64, 40, 48, 96, 3, 1, 1, 1, 1), seed);
  check_cudnn_repeat(st, conv2d_make(1, 3, 37, 45, 8, 7, 2, 3, 1, 1), seed);
}
#endif
