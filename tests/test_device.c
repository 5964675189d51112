// The device layer (core/device.h) and the op dispatch (ops/dispatch.h): device names, memory
// round trips, the guard device's trap on host access, arenas and parameter tables on a device,
// and the elementwise glue ops (CPU twins vs plain loops; dispatch on the guard device equals
// the cpu bit for bit).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "guard_util.h"
#include "harness.h"
#include "ops/dispatch.h"

static void test_parse(void) {
  device d;
  check_true("parse cpu", device_parse("cpu", &d) == MASA_OK && d.kind == DEV_CPU);
  check_true("parse guard", device_parse("guard", &d) == MASA_OK && d.kind == DEV_GUARD);
  check_true("unknown device is an error naming it",
             device_parse("tpu", &d) == MASA_ERR && strstr(masa_errmsg(), "tpu"));
  check_true("malformed ordinal is an error", device_parse("cuda:x", &d) == MASA_ERR);
  check_true("negative ordinal is an error", device_parse("cuda:-1", &d) == MASA_ERR);
  // "cuda" is either accepted (a GPU is visible) or refused with a message saying why.
  int r = device_parse("cuda", &d);
  check_true("cuda parses or explains", r == MASA_OK ? d.kind == DEV_CUDA
                                                     : strstr(masa_errmsg(), "cuda") != NULL);
  check_true("names", !strcmp(device_name(&dev_cpu), "cpu") && !strcmp(device_name(&guard_dev), "guard"));
}

static void test_memory(const device *d, uint64_t seed) {
  const int64_t n = 1000;
  float *h = mallocCheck(n * sizeof(float)), *back = mallocCheck(n * sizeof(float));
  rng_fill_uniform(h, n, -1, 1, seed, 1);
  float *p = dev_alloc(d, n * sizeof(float));
  float *z = guard_get(d, p, n);
  int zero = 1;
  for (int64_t i = 0; i < n; i++) zero &= z[i] == 0.0f;
  free(z);
  check_true(d->kind == DEV_GUARD ? "guard alloc is zeroed" : "cpu alloc is zeroed", zero);
  dev_upload(d, p, h, n * sizeof(float));
  float *q = dev_alloc(d, n * sizeof(float));
  dev_copy(d, q, p, n * sizeof(float));
  dev_download(d, back, q, n * sizeof(float));
  check_close("upload / copy / download round trip", back, h, n, 0, 0, "copies are exact");
  // 2-D copy: 10 rows of 7 floats out of rows of 20, into rows of 9.
  dev_zero(d, q, n * sizeof(float));
  dev_copy2d(d, q, 9 * sizeof(float), p + 3, 20 * sizeof(float), 7 * sizeof(float), 10);
  dev_download(d, back, q, n * sizeof(float));
  int ok = 1;
  for (int r = 0; r < 10; r++)
    for (int c = 0; c < 9; c++) ok &= back[r * 9 + c] == (c < 7 ? h[r * 20 + 3 + c] : 0.0f);
  check_true("copy2d moves the sub-block", ok);
  dev_free(d, p);
  dev_free(d, q);
  free(h), free(back);
}

// A child process that reads guard memory from host code must die with the guard's message
// (exit 70), and one that only goes through ops must not.
static void test_guard_trap(void) {
  float *p = dev_alloc(&guard_dev, 64 * sizeof(float));
  pid_t pid = fork();
  if (pid == 0) {
    volatile float v = p[3];  // host access outside an op
    (void)v;
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  check_true("host read of guard memory is caught (exit 70)",
             WIFEXITED(status) && WEXITSTATUS(status) == 70);
  pid = fork();
  if (pid == 0) {
    ew_fill(&guard_dev, 64, 2.0f, p);
    ew_scale(&guard_dev, 64, 0.5f, p);
    float h[64];
    dev_download(&guard_dev, h, p, sizeof h);
    _exit(h[10] == 1.0f ? 0 : 1);
  }
  waitpid(pid, &status, 0);
  check_true("ops and copies on guard memory run", WIFEXITED(status) && WEXITSTATUS(status) == 0);
  dev_free(&guard_dev, p);
}

// Each glue op on the cpu against a plain loop, then the dispatch on the guard device against
// the cpu (bitwise).
static void test_elementwise(uint64_t seed) {
  const int64_t rows = 13, cols = 77, n = rows * cols;
  float *a = mallocCheck(n * sizeof(float)), *b = mallocCheck(n * sizeof(float));
  float *s = mallocCheck(rows * sizeof(float)), *y = mallocCheck(n * sizeof(float));
  float *ref = mallocCheck(n * sizeof(float));
  rng_fill_uniform(a, n, -1, 1, seed, 2);
  rng_fill_uniform(b, n, -1, 1, seed, 3);
  rng_fill_uniform(s, rows, -1, 1, seed, 4);
  for (int64_t i = 0; i < n; i++) ref[i] = b[i] + 0.75f * a[i];
  memcpy(y, b, n * sizeof(float));
  ew_axpy_cpu(n, 0.75f, a, y);
  check_close("axpy", y, ref, n, 0, 0, "one multiply-add per element");
  for (int64_t i = 0; i < n; i++) ref[i] = a[i] > 0.0f ? b[i] : 0.0f;
  memcpy(y, b, n * sizeof(float));
  ew_relu_mask_cpu(n, a, y);
  check_close("relu_mask", y, ref, n, 0, 0, "selection");
  for (int64_t i = 0; i < n; i++) ref[i] = b[i] / 3.0f;
  memcpy(y, b, n * sizeof(float));
  ew_div_cpu(n, 3.0f, y);
  check_close("div", y, ref, n, 0, 0, "one division per element");
  for (int64_t r = 0; r < rows; r++) {
    double d = 0;
    for (int64_t i = 0; i < cols; i++) d += (double)a[r * cols + i] * b[r * cols + i];
    ref[r] = (float)d;
  }
  ew_row_dot_cpu(rows, cols, a, b, y);
  check_close("row_dot", y, ref, rows, 0, 0, "double sum in index order");

  // Guard dispatch == cpu dispatch.
  arena ag;
  arena_init_on(&ag, 0, &guard_dev);
  tensor ta = tensor_view(a, 1, (int64_t[]){n}), tb = tensor_view(b, 1, (int64_t[]){n});
  tensor ts = tensor_view(s, 1, (int64_t[]){rows});
  tensor ga = guard_put(&ag, &ta), gb = guard_put(&ag, &tb), gs = guard_put(&ag, &ts);
  float *gy = arena_zeros(&ag, n);
  memset(y, 0, n * sizeof(float));
  const device *c = &dev_cpu, *g = &guard_dev;
  ew_add(c, n, a, b, y), ew_add(g, n, ga.data, gb.data, gy);
  ew_row_scale_add(c, rows, cols, s, a, y), ew_row_scale_add(g, rows, cols, gs.data, ga.data, gy);
  ew_relu_mask(c, n, b, y), ew_relu_mask(g, n, gb.data, gy);
  ew_scale(c, n, 1.5f, y), ew_scale(g, n, 1.5f, gy);
  ew_axpy(c, n, -2.0f, a, y), ew_axpy(g, n, -2.0f, ga.data, gy);
  affine_add_relu_forward(c, 1, rows, cols, a, s, s, b, 1, y);
  affine_add_relu_forward(g, 1, rows, cols, ga.data, gs.data, gs.data, gb.data, 1, gy);
  guard_check_same("glue ops on guard == cpu", g, gy, y, n);
  arena_free(&ag);
  check_true("arena on guard releases its memory", dev_guard_bytes() == 0);
  free(a), free(b), free(s), free(y), free(ref);
}

static void test_param_table(uint64_t seed) {
  param_table t, h;
  param_table_init(&t);
  param_table_add(&t, "a.weight", 2, (int64_t[]){3, 5}, 1);
  param_table_add(&t, "a.running_mean", 1, (int64_t[]){5}, 0);
  param_table_alloc(&t);
  param_table_alloc_moments(&t, 2);
  rng_fill_uniform(t.params, (int64_t)t.total, -1, 1, seed, 5);
  rng_fill_uniform(t.moment2, (int64_t)t.trainable_total, 0, 1, seed, 6);
  float keep[20], keep_m2[15];
  memcpy(keep, t.params, sizeof keep);
  memcpy(keep_m2, t.moment2, sizeof keep_m2);
  param_table_to_device(&t, &guard_dev);
  check_true("table on guard", t.dev.kind == DEV_GUARD);
  param_table_zero_grads(&t);
  param_table_clone_layout(&h, &t, &dev_cpu);
  param_table_copy_roles(&h, &t);
  check_close("params survive the move (host copy)", h.params, keep, 20, 0, 0, "copies");
  check_close("moments survive the move", h.moment2, keep_m2, 15, 0, 0, "copies");
  param_table_to_device(&t, &dev_cpu);
  check_close("and back to the cpu", t.params, keep, 20, 0, 0, "copies");
  param_table_free(&t);
  param_table_free(&h);
}

static void test_options(void) {
  config c;
  config_init(&c);
  config_register(&c, device_schema);
  check_true("defaults apply on the cpu", device_apply_config(&dev_cpu, &c) == MASA_OK);
  config_set(&c, "device.precision", "bf16", "test");
  check_true("bf16 on the cpu is refused, naming the key",
             device_apply_config(&dev_cpu, &c) == MASA_ERR &&
                 strstr(masa_errmsg(), "device.precision") && strstr(masa_errmsg(), "CUDA"));
  check_true("bf16 on guard is refused", device_apply_config(&guard_dev, &c) == MASA_ERR);
  config_set(&c, "device.precision", "fp16", "test");
  check_true("unknown precision named",
             device_apply_config(&dev_cpu, &c) == MASA_ERR && strstr(masa_errmsg(), "fp16"));
  config_set(&c, "device.precision", "fp32", "test");
  config_set(&c, "device.conv", "winograd", "test");
  check_true("unknown conv backend named",
             device_apply_config(&dev_cpu, &c) == MASA_ERR && strstr(masa_errmsg(), "winograd"));
  config_free(&c);
}

int main(void) {
  uint64_t seed = test_begin("device", 4242);
  test_parse();
  test_memory(&dev_cpu, seed);
  test_memory(&guard_dev, seed);
  test_guard_trap();
  test_elementwise(seed);
  test_param_table(seed);
  test_options();
  return test_end();
}
