#define _GNU_SOURCE
#include "core/device.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"

#ifdef MASA_HAVE_CUDA
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#define STREAM(d) ((cudaStream_t)(d)->stream)
#endif

const device dev_cpu = {DEV_CPU, 0, NULL};

int device_parse(const char *name, device *out) {
  memset(out, 0, sizeof *out);
  if (!strcmp(name, "cpu")) return MASA_OK;
  if (!strcmp(name, "guard")) {
    out->kind = DEV_GUARD;
    return MASA_OK;
  }
  if (!strncmp(name, "cuda", 4) && (name[4] == 0 || name[4] == ':')) {
    int ord = 0;
    if (name[4] == ':') {
      char *end = NULL;
      long v = strtol(name + 5, &end, 10);
      if (!*(name + 5) || *end || v < 0 || v > 1023)
        return masa_error("--device %s: expected cuda or cuda:N with N a device number", name);
      ord = (int)v;
    }
#ifdef MASA_HAVE_CUDA
    int n = cuda_device_count();
    if (n == 0) return masa_error("--device %s: no CUDA device is visible on this machine", name);
    if (ord >= n)
      return masa_error("--device %s: only %d CUDA device%s visible", name, n, n == 1 ? "" : "s");
    out->kind = DEV_CUDA;
    out->ordinal = ord;
    return MASA_OK;
#else
    (void)ord;
    return masa_error("--device %s: this build has no CUDA (configure with nvcc on PATH)", name);
#endif
  }
  return masa_error("--device %s: unknown device (expected cpu, cuda, cuda:N or guard)", name);
}

void device_activate(const device *d) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) cudaCheck(cudaSetDevice(d->ordinal));
#else
  (void)d;
#endif
}

const char *device_name(const device *d) {
  static _Thread_local char buf[32];
  switch (d->kind) {
    case DEV_CPU:
      return "cpu";
    case DEV_GUARD:
      return "guard";
    case DEV_CUDA:
      snprintf(buf, sizeof buf, "cuda:%d", d->ordinal);
      return buf;
  }
  return "?";
}

int dev_is_host(const device *d) {
  return d->kind == DEV_CPU;
}

int device_set_precision(const device *d, const char *name) {
  int bf16;
  if (!strcmp(name, "fp32")) bf16 = 0;
  else if (!strcmp(name, "bf16")) bf16 = 1;
  else return masa_error("precision %s: unknown precision (expected fp32 or bf16)", name);
  if (bf16 && d->kind != DEV_CUDA)
    return masa_error("precision bf16 needs a CUDA device (the %s device computes in fp32)",
                      device_name(d));
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) cuda_set_precision(bf16);
#else
  if (bf16) return masa_error("precision bf16: this build has no CUDA");
#endif
  return MASA_OK;
}

// ---- guard device: a registry of mmap'd regions, PROT_NONE while closed ----

typedef struct {
  char *p;
  size_t bytes;  // mapped length (page multiple)
} guard_region;

static guard_region *g_regions;
static int g_nregions, g_capregions;
static int g_open;  // nesting depth of dev_guard_open
static size_t g_guard_bytes;

static void guard_protect(guard_region *r, int open) {
  if (mprotect(r->p, r->bytes, open ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) {
    perror("mprotect");
    masa_die(__FILE__, __LINE__, "mprotect", "libc", "guard device protection failed");
  }
}

static void guard_segv(int sig, siginfo_t *si, void *uctx) {
  (void)uctx;
  char *a = (char *)si->si_addr;
  for (int i = 0; i < g_nregions; i++) {
    if (a >= g_regions[i].p && a < g_regions[i].p + g_regions[i].bytes) {
      char msg[160];
      int n = snprintf(msg, sizeof msg,
                       "masa: host code touched guard-device memory at %p "
                       "(region %d) outside an "
                       "op or a dev_* copy\n",
                       (void *)a, i);
      if (write(2, msg, (size_t)n) < 0) _exit(70);
      _exit(70);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void guard_install_handler(void) {
  static int installed;
  if (installed) return;
  installed = 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = guard_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
}

static void *guard_alloc(size_t bytes) {
  guard_install_handler();
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = ((bytes ? bytes : 1) + page - 1) / page * page;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) masa_die(__FILE__, __LINE__, "mmap", "libc", "guard device allocation");
  if (g_nregions == g_capregions) {
    g_capregions = g_capregions ? 2 * g_capregions : 64;
    g_regions = realloc(g_regions, (size_t)g_capregions * sizeof *g_regions);
    masa_assert(g_regions);
  }
  g_regions[g_nregions] = (guard_region){p, len};
  if (!g_open) guard_protect(&g_regions[g_nregions], 0);
  g_nregions++;
  g_guard_bytes += len;
  return p;
}

static void guard_free(void *p) {
  for (int i = 0; i < g_nregions; i++) {
    if (g_regions[i].p == p) {
      munmap(p, g_regions[i].bytes);
      g_guard_bytes -= g_regions[i].bytes;
      g_regions[i] = g_regions[--g_nregions];
      return;
    }
  }
  masa_die(__FILE__, __LINE__, "dev_free", "guard",
           "pointer was not allocated on the guard device");
}

void dev_guard_open(void) {
  if (g_open++ == 0)
    for (int i = 0; i < g_nregions; i++) guard_protect(&g_regions[i], 1);
}

void dev_guard_close(void) {
  masa_assert(g_open > 0);
  if (--g_open == 0)
    for (int i = 0; i < g_nregions; i++) guard_protect(&g_regions[i], 0);
}

size_t dev_guard_bytes(void) {
  return g_guard_bytes;
}

// ---- memory ----

static void *alloc_impl(const device *d, size_t bytes, int zero) {
  switch (d->kind) {
    case DEV_CPU: {
      void *p = NULL;
      size_t len = ((bytes ? bytes : 1) + 63) / 64 * 64;
      if (posix_memalign(&p, 64, len) != 0)
        masa_die(__FILE__, __LINE__, "posix_memalign", "libc", "out of memory");
      if (zero) memset(p, 0, len);
      return p;
    }
    case DEV_GUARD:
      return guard_alloc(bytes);  // mmap memory is zeroed
    case DEV_CUDA: {
#ifdef MASA_HAVE_CUDA
      void *p = NULL;
      cudaCheck(cudaMalloc(&p, bytes ? bytes : 1));
      if (zero) cudaCheck(cudaMemsetAsync(p, 0, bytes ? bytes : 1, STREAM(d)));
      return p;
#endif
    }
  }
  masa_die(__FILE__, __LINE__, "dev_alloc", "device", "device kind not available in this build");
}

void *dev_alloc(const device *d, size_t bytes) { return alloc_impl(d, bytes, 1); }
void *dev_alloc_uninit(const device *d, size_t bytes) { return alloc_impl(d, bytes, 0); }

void dev_free(const device *d, void *p) {
  if (!p) return;
  switch (d->kind) {
    case DEV_CPU:
      free(p);
      return;
    case DEV_GUARD:
      guard_free(p);
      return;
    case DEV_CUDA:
#ifdef MASA_HAVE_CUDA
      cudaCheck(cudaFree(p));
#endif
      return;
  }
}

#ifdef MASA_HAVE_CUDA
static void cuda_copy(const device *d, void *dst, const void *src, size_t bytes,
                      enum cudaMemcpyKind kind) {
  if (!bytes) return;
  cudaCheck(cudaMemcpyAsync(dst, src, bytes, kind, STREAM(d)));
  // Host buffers may be reused as soon as we return: downloads and uploads
  // complete first.
  if (kind != cudaMemcpyDeviceToDevice) cudaCheck(cudaStreamSynchronize(STREAM(d)));
}
#endif

static void host_copy(const device *d, void *dst, const void *src, size_t bytes) {
  if (!bytes) return;
  if (d->kind == DEV_GUARD) dev_guard_open();
  memmove(dst, src, bytes);
  if (d->kind == DEV_GUARD) dev_guard_close();
}

void dev_upload(const device *d, void *dst, const void *src, size_t bytes) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) return cuda_copy(d, dst, src, bytes, cudaMemcpyHostToDevice);
#endif
  host_copy(d, dst, src, bytes);
}

void dev_download(const device *d, void *dst, const void *src, size_t bytes) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) return cuda_copy(d, dst, src, bytes, cudaMemcpyDeviceToHost);
#endif
  host_copy(d, dst, src, bytes);
}

void dev_copy(const device *d, void *dst, const void *src, size_t bytes) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) return cuda_copy(d, dst, src, bytes, cudaMemcpyDeviceToDevice);
#endif
  host_copy(d, dst, src, bytes);
}

void dev_copy2d(const device *d, void *dst, size_t dpitch, const void *src, size_t spitch,
                size_t width, size_t rows) {
  if (!width || !rows) return;
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) {
    cudaCheck(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDeviceToDevice,
                                STREAM(d)));
    return;
  }
#endif
  if (d->kind == DEV_GUARD) dev_guard_open();
  for (size_t r = 0; r < rows; r++)
    memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
  if (d->kind == DEV_GUARD) dev_guard_close();
}

void dev_zero(const device *d, void *p, size_t bytes) {
  if (!bytes) return;
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) {
    cudaCheck(cudaMemsetAsync(p, 0, bytes, STREAM(d)));
    return;
  }
#endif
  if (d->kind == DEV_GUARD) dev_guard_open();
  memset(p, 0, bytes);
  if (d->kind == DEV_GUARD) dev_guard_close();
}

void dev_sync(const device *d) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) cudaCheck(cudaStreamSynchronize(STREAM(d)));
#else
  (void)d;
#endif
}

// ---- pinned memory and overlapped uploads ----

void dev_host_register(const device *d, void *p, size_t bytes) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA && p && bytes) cudaCheck(cudaHostRegister(p, bytes, cudaHostRegisterDefault));
#else
  (void)d, (void)p, (void)bytes;
#endif
}

void dev_host_unregister(const device *d, void *p) {
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA && p) cudaCheck(cudaHostUnregister(p));
#else
  (void)d, (void)p;
#endif
}

struct dev_copier {
  device dev;
#ifdef MASA_HAVE_CUDA
  cudaStream_t copy;  // non-blocking: does not wait for the legacy default stream
  cudaEvent_t done, ready;
  int pending;
#endif
};

dev_copier *dev_copier_create(const device *d) {
  dev_copier *c = callocCheck(1, sizeof *c);
  c->dev = *d;
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) {
    cudaCheck(cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming));
  }
#endif
  return c;
}

void dev_copier_upload(dev_copier *c, void *dst, const void *src, size_t bytes) {
#ifdef MASA_HAVE_CUDA
  if (c->dev.kind == DEV_CUDA) {
    if (!c->pending) {  // the destination may still be read by work queued on the compute stream
      cudaCheck(cudaEventRecord(c->ready, (cudaStream_t)c->dev.stream));
      cudaCheck(cudaStreamWaitEvent(c->copy, c->ready, 0));
    }
    if (bytes) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->copy));
    c->pending = 1;
    return;
  }
#endif
  dev_upload(&c->dev, dst, src, bytes);
}

void dev_copier_fence(dev_copier *c) {
#ifdef MASA_HAVE_CUDA
  if (c->dev.kind == DEV_CUDA && c->pending) {
    cudaCheck(cudaEventRecord(c->done, c->copy));
    cudaCheck(cudaStreamWaitEvent((cudaStream_t)c->dev.stream, c->done, 0));
    c->pending = 0;
  }
#else
  (void)c;
#endif
}

void dev_copier_destroy(dev_copier *c) {
  if (!c) return;
#ifdef MASA_HAVE_CUDA
  if (c->dev.kind == DEV_CUDA) {
    cudaCheck(cudaStreamSynchronize(c->copy));
    cudaCheck(cudaEventDestroy(c->done));
    cudaCheck(cudaEventDestroy(c->ready));
    cudaCheck(cudaStreamDestroy(c->copy));
  }
#endif
  free(c);
}

// ---- device.* recipe keys ----

const cfg_key device_schema[] = {
    {"device.precision", CFG_STRING, "fp32",
     "GEMMs and convolutions on a GPU: fp32 (exact parity with the CPU) | bf16 (bf16 operands, "
     "fp32 accumulation; weights, gradients and activations stay fp32)"},
    {"device.conv", CFG_STRING, "auto",
     "dense convolutions on a GPU: auto (cuDNN where it takes the shape) | cudnn | im2col"},
    {"device.deterministic", CFG_BOOL, "true",
     "GPU backward reductions in a fixed order (RoIAlign and DCN input gradients gathered, not "
     "scattered with atomics; deterministic cuDNN algorithms): repeated runs are bit-identical. "
     "false allows atomics and the fastest cuDNN algorithms"},
    {NULL, 0, NULL, NULL}};

int device_apply_config(const device *d, const config *c) {
  if (device_set_precision(d, config_str(c, "device.precision")) != MASA_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", masa_errmsg());
    return masa_error("device.precision: %s", msg);
  }
  const char *conv = config_str(c, "device.conv");
  int mode = !strcmp(conv, "im2col") ? 0 : !strcmp(conv, "cudnn") ? 1 : !strcmp(conv, "auto") ? 2 : -1;
  if (mode < 0) return masa_error("device.conv: expected auto, cudnn or im2col, got '%s'", conv);
  int det = config_bool(c, "device.deterministic");
#ifdef MASA_HAVE_CUDA
  if (d->kind == DEV_CUDA) {
    cuda_set_conv_backend(mode);
    cuda_set_deterministic(det);
    roi_align_cuda_set_atomic(!det);
  }
#else
  (void)det;
#endif
  return MASA_OK;
}
