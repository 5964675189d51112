// conv2d through cuDNN (legacy v9 API), the alternative to the im2col + cuBLAS twins in
// kernels/conv.cu; same semantics as conv2d_forward_cpu / conv2d_backward_cpu (ops/conv.h):
// NCHW, PyTorch weight layout (c_out, c_in/g, kh, kw), cross-correlation, zero padding, stride,
// dilation, groups (cudnnSetConvolutionGroupCount); forward overwrites y then adds bias; backward
// accumulates into dx, dw, dbias (alpha = 1, beta = 1), each nullable.
// - FP32 only, CUDNN_FMA_MATH on every convolution descriptor: no tensor cores, no TF32 (cuDNN's
//   DEFAULT_MATH permits TF32 on sm_80+). Algorithms reporting another math type are skipped.
// - Plans are cached per conv2d_desc (open-addressing hash): descriptors, and per mode the chosen
//   forward / backward-data / backward-filter algorithm and its workspace. Algorithms are chosen
//   lazily (forward on the first forward, both backward ones on the first backward).
// - cuda_deterministic() on (the default): algorithms from cuDNN's heuristics
//   (cudnnGet*Algorithm_v7: the choice depends only on shape, GPU and library, so two runs pick
//   the same one), deterministic kernels only, and only the GEMM-family algorithms (the CPU's
//   products summed in another order; FFT / Winograd round differently). Off: the fastest measured
//   algorithm (cudnnFind*Algorithm, once per shape), any FMA-math one.
// - dbias by our own fixed-order double reduction (as kernels/conv.cu and the CPU), not
//   cudnnConvolutionBackwardBias, so it is deterministic and within a rounding of the CPU.
// - One cuDNN handle per process, bound to the caller's stream on every call; one grow-only
//   workspace, (re)allocated only when a newly planned shape needs more than any before (the old
//   one is freed after a device synchronisation), so steady state never allocates. Like
//   masa_cublas: one host thread drives the GPU, one stream at a time.
// - Returns 0 (nothing written) when cuDNN refuses a shape (descriptor rejected, > 2^31 elements
//   in a tensor, no usable algorithm within CUDNN_WS_LIMIT): the caller falls back to im2col.
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define CUDNN_WS_LIMIT ((size_t)1 << 30)  // algorithms needing more workspace are skipped

// ---- process-wide switches ----

static int g_conv_backend = 2;  // 0 im2col, 1 cudnn, 2 auto
static int g_deterministic = 1;

extern "C" void cuda_set_conv_backend(int mode) {
  masa_assert(mode >= 0 && mode <= 2);
  g_conv_backend = mode;
}
extern "C" int cuda_conv_backend(void) { return g_conv_backend; }
extern "C" void cuda_set_deterministic(int on) { g_deterministic = on != 0; }
extern "C" int cuda_deterministic(void) { return g_deterministic; }

// ---- handle and workspace ----

static cudnnHandle_t g_cudnn;
// Grow-only: grows when a shape is planned, never in steady state.
static cuda_workspace g_ws = {NULL, 0, NULL, 0, 0, "cuDNN workspace"};
static cudaStream_t g_stream;  // the stream the handle is bound to

static cudnnHandle_t cudnn_handle(cudaStream_t stream) {
  if (!g_cudnn) cudnnCheck(cudnnCreate(&g_cudnn));
  cudnnCheck(cudnnSetStream(g_cudnn, stream));
  g_stream = stream;
  return g_cudnn;
}

// ---- plan cache ----

enum { ALGO_UNSET = -1, ALGO_NONE = -2 };

typedef struct {
  conv2d_desc key;
  int used;
  int refused;  // descriptors rejected: never cuDNN for this shape
  cudnnTensorDescriptor_t xd, yd, bd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  // [0] fast, [1] deterministic: the chosen algorithm, or ALGO_UNSET / ALGO_NONE.
  int fwd[2], bwd_data[2], bwd_filter[2];
} cudnn_plan;

static cudnn_plan *g_plans;
static size_t g_plan_cap, g_plan_count;

static uint64_t desc_hash(const conv2d_desc *d) {
  const unsigned char *p = (const unsigned char *)d;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < sizeof *d; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static cudnn_plan *plan_slot(cudnn_plan *tab, size_t cap, const conv2d_desc *d) {
  size_t i = (size_t)desc_hash(d) & (cap - 1);
  while (tab[i].used && memcmp(&tab[i].key, d, sizeof *d)) i = (i + 1) & (cap - 1);
  return &tab[i];
}

static void plan_table_grow(void) {
  size_t cap = g_plan_cap ? 2 * g_plan_cap : 64;
  cudnn_plan *tab = (cudnn_plan *)callocCheck(cap, sizeof(cudnn_plan));
  for (size_t i = 0; i < g_plan_cap; i++)
    if (g_plans[i].used) *plan_slot(tab, cap, &g_plans[i].key) = g_plans[i];
  free(g_plans);
  g_plans = tab;
  g_plan_cap = cap;
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Descriptors for a new shape; p->refused when cuDNN rejects them or a size overflows int.
static void plan_init(cudnn_plan *p, const conv2d_desc *d) {
  memset(p, 0, sizeof *p);
  p->key = *d;
  p->used = 1;
  for (int m = 0; m < 2; m++) p->fwd[m] = p->bwd_data[m] = p->bwd_filter[m] = ALGO_UNSET;
  const int64_t ho = conv2d_out_h(d), wo = conv2d_out_w(d), cin_g = d->c_in / d->groups;
  const int64_t sizes[] = {d->n, d->c_in, d->h, d->w, d->c_out, d->kh, d->kw, d->pad_h, d->pad_w,
                           d->stride_h, d->stride_w, d->dil_h, d->dil_w, d->groups, ho, wo,
                           d->n * d->c_in * d->h * d->w, d->n * d->c_out * ho * wo,
                           d->c_out * cin_g * d->kh * d->kw};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (!fits_int(sizes[i])) {
      p->refused = 1;
      return;
    }
  cudnnCheck(cudnnCreateTensorDescriptor(&p->xd));
  cudnnCheck(cudnnCreateTensorDescriptor(&p->yd));
  cudnnCheck(cudnnCreateTensorDescriptor(&p->bd));
  cudnnCheck(cudnnCreateFilterDescriptor(&p->wd));
  cudnnCheck(cudnnCreateConvolutionDescriptor(&p->cd));
  int n = 0, c = 0, h = 0, w = 0;
  int ok =
      cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n,
                                 (int)d->c_in, (int)d->h, (int)d->w) == CUDNN_STATUS_SUCCESS &&
      cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n,
                                 (int)d->c_out, (int)ho, (int)wo) == CUDNN_STATUS_SUCCESS &&
      cudnnSetTensor4dDescriptor(p->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)d->c_out, 1,
                                 1) == CUDNN_STATUS_SUCCESS &&
      cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)d->c_out,
                                 (int)cin_g, (int)d->kh, (int)d->kw) == CUDNN_STATUS_SUCCESS &&
      cudnnSetConvolution2dDescriptor(p->cd, (int)d->pad_h, (int)d->pad_w, (int)d->stride_h,
                                      (int)d->stride_w, (int)d->dil_h, (int)d->dil_w,
                                      CUDNN_CROSS_CORRELATION,
                                      CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS &&
      cudnnSetConvolutionGroupCount(p->cd, (int)d->groups) == CUDNN_STATUS_SUCCESS &&
      cudnnSetConvolutionMathType(p->cd, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS &&
      cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &n, &c, &h, &w) ==
          CUDNN_STATUS_SUCCESS;
  // cuDNN's output size must be ours (same floor rule); anything else is a refusal.
  if (!ok || n != d->n || c != d->c_out || h != ho || w != wo) p->refused = 1;
}

static void refusal_note(const conv2d_desc *d, const char *why) {
  if (g_conv_backend != 1) return;  // auto: falling back is the plan, not news
  fprintf(stderr,
          "conv2d cudnn: n%lld c%lld %lldx%lld -> c%lld k%lldx%lld s%lld,%lld p%lld,%lld "
          "d%lld,%lld g%lld: %s; using im2col\n",
          (long long)d->n, (long long)d->c_in, (long long)d->h, (long long)d->w,
          (long long)d->c_out, (long long)d->kh, (long long)d->kw, (long long)d->stride_h,
          (long long)d->stride_w, (long long)d->pad_h, (long long)d->pad_w, (long long)d->dil_h,
          (long long)d->dil_w, (long long)d->groups, why);
}

static cudnn_plan *plan_get(const conv2d_desc *d) {
  if (2 * (g_plan_count + 1) > g_plan_cap) plan_table_grow();
  cudnn_plan *p = plan_slot(g_plans, g_plan_cap, d);
  if (!p->used) {
    plan_init(p, d);
    g_plan_count++;
    if (p->refused) refusal_note(d, "descriptor rejected or size beyond int");
  }
  return p;
}

// A perf entry is usable when it ran, reports FMA math (our descriptor's: no tensor ops, no
// TF32; PyTorch asserts the same for FP32 without TF32), fits the workspace limit, and in
// deterministic mode is deterministic and from the GEMM family.
static int perf_usable(cudnnStatus_t status, cudnnMathType_t math, size_t memory,
                       cudnnDeterminism_t det, int gemm_family, int det_mode) {
  if (status != CUDNN_STATUS_SUCCESS || math != CUDNN_FMA_MATH || memory > CUDNN_WS_LIMIT)
    return 0;
  return !det_mode || (det == CUDNN_DETERMINISTIC && gemm_family);
}

static int fwd_gemm_family(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
static int bwd_data_gemm_family(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
static int bwd_filter_gemm_family(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// The three choosers: heuristics in deterministic mode, measurement otherwise; the first usable
// entry of cuDNN's ranked list. The workspace is re-queried for the chosen algorithm with our
// descriptor (FMA math), and reserved now.
static void choose_fwd(cudnnHandle_t h, cudnn_plan *p, int m) {
  int max = 0, got = 0;
  cudnnCheck(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
  cudnnConvolutionFwdAlgoPerf_t perf[32];
  if (max > 32) max = 32;
  if (m)
    cudnnCheck(cudnnGetConvolutionForwardAlgorithm_v7(h, p->xd, p->wd, p->cd, p->yd, max, &got,
                                                      perf));
  else
    cudnnCheck(cudnnFindConvolutionForwardAlgorithm(h, p->xd, p->wd, p->cd, p->yd, max, &got,
                                                    perf));
  p->fwd[m] = ALGO_NONE;
  for (int i = 0; i < got; i++) {
    size_t ws = 0;
    if (!perf_usable(perf[i].status, perf[i].mathType, perf[i].memory, perf[i].determinism,
                     fwd_gemm_family(perf[i].algo), m) ||
        cudnnGetConvolutionForwardWorkspaceSize(h, p->xd, p->wd, p->cd, p->yd, perf[i].algo,
                                                &ws) != CUDNN_STATUS_SUCCESS ||
        ws > CUDNN_WS_LIMIT)
      continue;
    p->fwd[m] = (int)perf[i].algo;
    cuda_workspace_get(&g_ws, ws, g_stream);
    return;
  }
  refusal_note(&p->key, "no usable forward algorithm");
}

static void choose_bwd_data(cudnnHandle_t h, cudnn_plan *p, int m) {
  int max = 0, got = 0;
  cudnnCheck(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
  cudnnConvolutionBwdDataAlgoPerf_t perf[32];
  if (max > 32) max = 32;
  if (m)
    cudnnCheck(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->wd, p->yd, p->cd, p->xd, max,
                                                           &got, perf));
  else
    cudnnCheck(cudnnFindConvolutionBackwardDataAlgorithm(h, p->wd, p->yd, p->cd, p->xd, max, &got,
                                                         perf));
  p->bwd_data[m] = ALGO_NONE;
  for (int i = 0; i < got; i++) {
    size_t ws = 0;
    if (!perf_usable(perf[i].status, perf[i].mathType, perf[i].memory, perf[i].determinism,
                     bwd_data_gemm_family(perf[i].algo), m) ||
        cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->wd, p->yd, p->cd, p->xd, perf[i].algo,
                                                     &ws) != CUDNN_STATUS_SUCCESS ||
        ws > CUDNN_WS_LIMIT)
      continue;
    p->bwd_data[m] = (int)perf[i].algo;
    cuda_workspace_get(&g_ws, ws, g_stream);
    return;
  }
  refusal_note(&p->key, "no usable backward-data algorithm");
}

static void choose_bwd_filter(cudnnHandle_t h, cudnn_plan *p, int m) {
  int max = 0, got = 0;
  cudnnCheck(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
  cudnnConvolutionBwdFilterAlgoPerf_t perf[32];
  if (max > 32) max = 32;
  if (m)
    cudnnCheck(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->xd, p->yd, p->cd, p->wd, max,
                                                             &got, perf));
  else
    cudnnCheck(cudnnFindConvolutionBackwardFilterAlgorithm(h, p->xd, p->yd, p->cd, p->wd, max,
                                                           &got, perf));
  p->bwd_filter[m] = ALGO_NONE;
  for (int i = 0; i < got; i++) {
    size_t ws = 0;
    if (!perf_usable(perf[i].status, perf[i].mathType, perf[i].memory, perf[i].determinism,
                     bwd_filter_gemm_family(perf[i].algo), m) ||
        cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->xd, p->yd, p->cd, p->wd,
                                                       perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
        ws > CUDNN_WS_LIMIT)
      continue;
    p->bwd_filter[m] = (int)perf[i].algo;
    cuda_workspace_get(&g_ws, ws, g_stream);
    return;
  }
  refusal_note(&p->key, "no usable backward-filter algorithm");
}

static void validate(const conv2d_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride_h > 0 && d->stride_w > 0);
  masa_assert(d->pad_h >= 0 && d->pad_w >= 0 && d->dil_h > 0 && d->dil_w > 0);
  masa_assert(d->groups > 0 && d->c_in % d->groups == 0 && d->c_out % d->groups == 0);
  masa_assert(conv2d_out_h(d) > 0 && conv2d_out_w(d) > 0);
}

// ---- the twins ----

extern "C" int conv2d_forward_cudnn(const conv2d_desc *d, const float *x, const float *w,
                                    const float *bias, float *y, cudaStream_t s) {
  validate(d);
  if (d->n == 0) return 1;  // nothing to write, as on the CPU
  cudnn_plan *p = plan_get(d);
  if (p->refused) return 0;
  const int m = g_deterministic;
  cudnnHandle_t h = cudnn_handle(s);
  if (p->fwd[m] == ALGO_UNSET) choose_fwd(h, p, m);
  if (p->fwd[m] == ALGO_NONE) return 0;
  const float one = 1.0f, zero = 0.0f;
  void *ws = cuda_workspace_get(&g_ws, 0, s);
  cudnnCheck(cudnnConvolutionForward(h, &one, p->xd, x, p->wd, w, p->cd,
                                     (cudnnConvolutionFwdAlgo_t)p->fwd[m], ws, g_ws.bytes, &zero,
                                     p->yd, y));
  // y = 1 * bias + 1 * y: one float add per element, the CPU's.
  if (bias) cudnnCheck(cudnnAddTensor(h, &one, p->bd, bias, &one, p->yd, y));
  return 1;
}

extern "C" int conv2d_backward_cudnn(const conv2d_desc *d, const float *x, const float *w,
                                     const float *dy, float *dx, float *dw, float *dbias,
                                     cudaStream_t s) {
  validate(d);
  if (d->n == 0) return 1;  // every sum is empty: nothing changes
  cudnn_plan *p = plan_get(d);
  if (p->refused) return 0;
  const int m = g_deterministic;
  cudnnHandle_t h = cudnn_handle(s);
  // Choose every algorithm needed before writing anything, so a refusal leaves all untouched.
  if (dx && p->bwd_data[m] == ALGO_UNSET) choose_bwd_data(h, p, m);
  if (dw && p->bwd_filter[m] == ALGO_UNSET) choose_bwd_filter(h, p, m);
  if ((dx && p->bwd_data[m] == ALGO_NONE) || (dw && p->bwd_filter[m] == ALGO_NONE)) return 0;
  if (dbias) {
    const int64_t P = conv2d_out_h(d) * conv2d_out_w(d);
    channel_sum_accumulate_cuda(d->n, d->c_out, P, dy, dbias, s);
  }
  const float one = 1.0f;
  void *ws = cuda_workspace_get(&g_ws, 0, s);
  if (dw)
    cudnnCheck(cudnnConvolutionBackwardFilter(h, &one, p->xd, x, p->yd, dy, p->cd,
                                              (cudnnConvolutionBwdFilterAlgo_t)p->bwd_filter[m],
                                              ws, g_ws.bytes, &one, p->wd, dw));
  if (dx)
    cudnnCheck(cudnnConvolutionBackwardData(h, &one, p->wd, w, p->yd, dy, p->cd,
                                            (cudnnConvolutionBwdDataAlgo_t)p->bwd_data[m], ws,
                                            g_ws.bytes, &one, p->xd, dx));
  return 1;
}

// ---- benchmark helper ----

// Uniform [-1, 1) from a hash of the index (no host round trip for large buffers).
static __global__ void bench_fill_kernel(int64_t n, uint64_t salt, float *__restrict__ v) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    uint64_t z = (uint64_t)i * 0x9E3779B97F4A7C15ull + salt;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    v[i] = (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
}

static float *bench_buffer(int64_t n, uint64_t salt, cudaStream_t s) {
  float *p = NULL;
  cudaCheck(cudaMalloc((void **)&p, (size_t)(n > 0 ? n : 1) * sizeof(float)));
  bench_fill_kernel<<<blocks_for(n, 256), 256, 0, s>>>(n, salt, p);
  cudaLaunchCheck();
  return p;
}

// One call of the chosen backend; 0 when cuDNN refused (backend 1).
static int bench_once(const conv2d_desc *d, int backend, int backward, const float *x,
                      const float *w, const float *b, float *y, const float *dy, float *dx,
                      float *dw, float *db, cudaStream_t s) {
  if (backend == 1)
    return backward ? conv2d_backward_cudnn(d, x, w, dy, dx, dw, db, s)
                    : conv2d_forward_cudnn(d, x, w, b, y, s);
  if (backward)
    conv2d_backward_cuda(d, x, w, dy, dx, dw, db, s);
  else
    conv2d_forward_cuda(d, x, w, b, y, s);
  return 1;
}

extern "C" double conv2d_bench_ms(const conv2d_desc *d, int backend, int backward, int repeats) {
  validate(d);
  masa_assert(backend >= 0 && backend <= 2 && repeats > 0);
  const int64_t ho = conv2d_out_h(d), wo = conv2d_out_w(d);
  const int64_t nx = d->n * d->c_in * d->h * d->w, ny = d->n * d->c_out * ho * wo;
  const int64_t nw = d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
  cudaStream_t s;
  cudaCheck(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float *x = bench_buffer(nx, 1, s), *w = bench_buffer(nw, 2, s), *b = bench_buffer(d->c_out, 3, s);
  float *y = bench_buffer(ny, 4, s), *dy = bench_buffer(ny, 5, s), *dx = bench_buffer(nx, 6, s);
  float *dw = bench_buffer(nw, 7, s), *db = bench_buffer(d->c_out, 8, s);
  const int saved = g_conv_backend;
  if (backend != 1) g_conv_backend = backend;  // conv2d_*_cuda dispatches on the switch
  double ms = -1.0;
  // Two untimed calls: the first plans the shape (algorithm search, workspace).
  if (bench_once(d, backend, backward, x, w, b, y, dy, dx, dw, db, s) &&
      bench_once(d, backend, backward, x, w, b, y, dy, dx, dw, db, s)) {
    cudaEvent_t e0, e1;
    cudaCheck(cudaEventCreate(&e0));
    cudaCheck(cudaEventCreate(&e1));
    cudaCheck(cudaEventRecord(e0, s));
    for (int r = 0; r < repeats; r++)
      bench_once(d, backend, backward, x, w, b, y, dy, dx, dw, db, s);
    cudaCheck(cudaEventRecord(e1, s));
    cudaCheck(cudaEventSynchronize(e1));
    float total = 0.0f;
    cudaCheck(cudaEventElapsedTime(&total, e0, e1));
    ms = (double)total / repeats;
    cudaCheck(cudaEventDestroy(e0));
    cudaCheck(cudaEventDestroy(e1));
  }
  g_conv_backend = saved;
  cudaCheck(cudaStreamSynchronize(s));
  float *bufs[] = {x, w, b, y, dy, dx, dw, db};
  for (int i = 0; i < 8; i++) cudaCheck(cudaFree(bufs[i]));
  cudaCheck(cudaStreamDestroy(s));
  return ms;
}
