// `masa bench gpu`: what MASA-R50 training costs on one GPU, beside PyTorch on the same GPU in
// the same run (tools/bench_gpu_torch.py: torch + torchvision ops, the reference modules of
// tests/reference/). Three parts (--parts, default all):
// - kernels: every CUDA twin on the training path at MASA-R50 shapes (data.batch_size images at
//   aug.view_size, model.channels channels, bench.rois RoIs per image), called directly through
//   kernels.h on device buffers; CUDA events around each call, median of bench.repeats after
//   bench.warmup. The GEMM-based ops (conv2d, DCNv2, linear) also run in bf16 GEMM precision
//   (cuda_set_precision(1)) against torch.autocast(bfloat16). Each row gives ms forward, ms
//   backward and an achieved rate: GFLOP/s for the GEMM-based ops, GB/s for memory-bound ones
//   (formulas at kcase_work below).
// - step: one full training step of the recipe (default configs/masa_r50.cfg: 8 pairs at 1024)
//   on the device: train_stepper_run (both views, proposals, targets, losses, distillation,
//   backward) + optim_step, synchronised at both ends; the loader's wait is outside the timed
//   span (PyTorch gets its inputs ready-made). Median step ms, pairs/s, the activation arena
//   peak and the device memory in use (cudaMemGetInfo, after the steps minus before the model).
//   Rows fp32 and bf16 (the GEMM precision switch; everything else stays fp32).
// - torch: the same kernels and the same step (same recipe, shapes, RoI counts per pair and
//   optimizer) in PyTorch eager, fp32 with TF32 off (our fp32 is pedantic FP32) and
//   autocast(bfloat16); the tables then show the ratio torch time / our time and whether the
//   goal of issue 7 (a train step at least 2x faster than PyTorch eager) is met.
// Exits MASA_EXIT_NO_GPU (3) without a usable GPU or in a build without CUDA, as `masa check`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/arena.h"
#include "core/check.h"
#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/loader.h"
#include "data/synth.h"
#include "model/masa_model.h"
#include "train/optim.h"
#include "train/train_step.h"

#ifdef MASA_HAVE_CUDA
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"
#endif

#ifndef MASA_SOURCE_DIR
#define MASA_SOURCE_DIR "."
#endif

static const char *bench_gpu_usage =
    "usage: masa bench gpu [--config FILE] [--set KEY=VALUE]... [--parts LIST] [--device cuda:N]\n"
    "                      [--threads N]\n"
    "  --parts: comma list of kernels, step, torch (default all; torch adds the PyTorch columns to\n"
    "  the kernels and/or step parts). The recipe defaults to configs/masa_r50.cfg; shapes come from\n"
    "  data.batch_size (pairs, default 8) and aug.view_size (default 1024), e.g. for a small GPU\n"
    "  --set aug.view_size=512 --set data.batch_size=2. bench.repeats / bench.warmup: timed and\n"
    "  untimed repetitions; bench.rois: RoIs per image of the RoIAlign row; bench.python: the\n"
    "  interpreter with torch + torchvision; bench.torch=false skips it.";

typedef struct {
  const char *parts, *device, *recipe;
  const char *sets[64];
  int nsets;
} gpu_args;

static int has_part(const gpu_args *a, const char *p) {
  if (!a->parts) return 1;
  size_t n = strlen(p);
  for (const char *s = a->parts; (s = strstr(s, p)); s += n)
    if ((s == a->parts || s[-1] == ',') && (s[n] == ',' || !s[n])) return 1;
  return 0;
}

static int parse_args(int nrest, char **rest, gpu_args *a) {
  for (int i = 0; i < nrest; i++) {
    const char *k = rest[i], *v = i + 1 < nrest ? rest[i + 1] : NULL;
    if (strcmp(k, "--device") && strcmp(k, "--parts"))
      return masa_error("bench gpu: unknown option '%s'", k);
    if (!v) return masa_error("bench gpu: '%s' needs a value", k);
    i++;
    if (!strcmp(k, "--device")) {
      a->device = v;
    } else if (!strcmp(k, "--parts")) {
      a->parts = v;
      if (!*v) return masa_error("bench gpu: --parts: empty list (kernels, step, torch)");
      for (const char *s = v; *s;) {
        size_t len = strcspn(s, ",");
        if (!((len == 7 && !strncmp(s, "kernels", 7)) || (len == 4 && !strncmp(s, "step", 4)) ||
              (len == 5 && !strncmp(s, "torch", 5))))
          return masa_error("bench gpu: --parts: unknown part '%.*s' (kernels, step, torch)",
                            (int)len, s);
        s += len + (s[len] == ',');
      }
      if (!has_part(a, "kernels") && !has_part(a, "step"))
        return masa_error("bench gpu: --parts: torch adds a column to kernels or step; name one");
    }
  }
  return MASA_OK;
}

#ifdef MASA_HAVE_CUDA

static const char *src_dir(void) {
  return getenv("MASA_SOURCE_DIR") ? getenv("MASA_SOURCE_DIR") : MASA_SOURCE_DIR;
}

static int cmp_double(const void *x, const void *y) {
  double p = *(const double *)x, q = *(const double *)y;
  return (p > q) - (p < q);
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof t[0], cmp_double);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

#define MAX_REPEATS 64

// ---------------------------------------------------------------------------------------------
// Kernels

typedef enum {
  K_CONV, K_DCN, K_ROI, K_GN, K_LINEAR, K_RELU, K_ADD, K_AXPY, K_RELU_MASK, K_SGD, K_ADAMW,
  K_GRAD_NORM
} kop;

static const char *const kop_names[] = {"conv2d", "dcn", "roi_align", "group_norm", "linear",
                                        "relu", "add", "axpy", "relu_mask", "sgd", "adamw",
                                        "grad_norm"};

typedef struct {
  char name[64];
  kop op;
  int bf16;                     // GEMM precision of the row (conv2d, dcn, linear)
  int64_t n, c, h, w, c_out;    // conv/dcn: input (n, c, h, w), c_out; gn: (n, c, h*w);
                                // linear: n rows, c in, c_out out; roi: n images, c channels,
                                // h = w = view size; elementwise / optimizer: n elements
  int64_t k, s, p, groups;      // conv: kernel, stride, padding; gn: groups; roi: RoIs (k)
  int dx;                       // conv: also the input gradient (not for the stem)
  double fwd_ms, bwd_ms;        // ours; bwd_ms < 0: the op has no backward
  double fwd_work, bwd_work;    // FLOPs or bytes per call
  int bytes;                    // 1: work counts bytes (GB/s), 0: FLOPs (GFLOP/s)
  double t_fwd_ms, t_bwd_ms;    // PyTorch; < 0: not measured
} kcase;

// Work per call, the rate's numerator (the formula of each row):
// - conv2d: 2 * n * c_out * (c / groups) * kh * kw * ho * wo FLOPs forward; backward the dw GEMM
//   plus (except the stem) the dx GEMM, each the forward's count.
// - dcn: the forward's GEMM, 2 * n * c_out * c * 9 * ho * wo (bilinear sampling not counted);
//   backward 2x (dx columns and dweight; doffset / dmask not counted).
// - linear: 2 * n * in * out forward, 4 * n * in * out backward (dx and dw).
// - memory-bound ops count the minimum traffic, 4 bytes per float read or written once:
//   roi_align: forward the output plus 4 bilinear corners read per output element (20 B per
//   element of y (k, c, 7, 7)); backward dy read plus 4 corners read-modify-written (36 B);
//   group_norm: forward x read + y written (8 B / element), backward x, dy read + dx written
//   (12 B); relu: forward 8 B, backward y, dy, dx read + dx written (16 B); add a + b -> y and
//   axpy y += a x: 12 B; relu_mask g *= (y > 0): 12 B; sgd (p, g, momentum read; p, momentum
//   written): 20 B; adamw (p, g, m, v read; p, m, v written): 28 B; grad_norm (g read): 4 B.
static void kcase_work(kcase *q) {
  double n = (double)q->n;
  q->bytes = 1;
  switch (q->op) {
    case K_CONV: {
      double ho = (double)((q->h + 2 * q->p - q->k) / q->s + 1), wo = (double)((q->w + 2 * q->p - q->k) / q->s + 1);
      q->fwd_work = 2.0 * n * (double)q->c_out * (double)(q->c / q->groups) * (double)(q->k * q->k) * ho * wo;
      q->bwd_work = q->fwd_work * (q->dx ? 2 : 1);
      q->bytes = 0;
      break;
    }
    case K_DCN:
      q->fwd_work = 2.0 * n * (double)q->c_out * (double)q->c * 9.0 * (double)(q->h * q->w);
      q->bwd_work = 2 * q->fwd_work;
      q->bytes = 0;
      break;
    case K_LINEAR:
      q->fwd_work = 2.0 * n * (double)q->c * (double)q->c_out;
      q->bwd_work = 2 * q->fwd_work;
      q->bytes = 0;
      break;
    case K_ROI: {
      double e = (double)q->k * (double)q->c * 49.0;
      q->fwd_work = 20 * e, q->bwd_work = 36 * e;
      break;
    }
    case K_GN: q->fwd_work = 8 * n * (double)(q->c * q->h), q->bwd_work = 12 * n * (double)(q->c * q->h); break;
    case K_RELU: q->fwd_work = 8 * n, q->bwd_work = 16 * n; break;
    case K_ADD: case K_AXPY: case K_RELU_MASK: q->fwd_work = 12 * n; break;
    case K_SGD: q->fwd_work = 20 * n; break;
    case K_ADAMW: q->fwd_work = 28 * n; break;
    case K_GRAD_NORM: q->fwd_work = 4 * n; break;
  }
}

static kcase *kcase_add(kcase *v, int *nv, int cap, kop op, const char *name) {
  if (*nv >= cap) return NULL;
  kcase *q = &v[(*nv)++];
  memset(q, 0, sizeof *q);
  q->op = op;
  snprintf(q->name, sizeof q->name, "%s", name);
  q->groups = 1, q->s = 1;
  q->bwd_ms = -1, q->t_fwd_ms = -1, q->t_bwd_ms = -1;
  return q;
}

static void add_conv(kcase *v, int *nv, int cap, const char *name, int64_t n, int64_t c, int64_t hw,
                     int64_t c_out, int64_t k, int64_t s, int dx) {
  if (hw < k || hw < 1) return;
  for (int bf = 0; bf < 2; bf++) {
    char full[64];
    snprintf(full, sizeof full, "%s%s", name, bf ? " bf16" : "");
    kcase *q = kcase_add(v, nv, cap, K_CONV, full);
    if (!q) return;
    q->n = n, q->c = c, q->h = q->w = hw, q->c_out = c_out, q->k = k, q->s = s, q->p = k / 2;
    q->dx = dx, q->bf16 = bf;
  }
}

// The rows at batch B (images per view), view S, C channels, R RoIs per image; 64M-parameter
// optimizer rows (MASA-R50 trains ~45M parameters; 64M is the round figure).
static int make_cases(kcase *v, int cap, int64_t B, int64_t S, int64_t C, int64_t R) {
  int nv = 0;
  char nm[48];
  for (int l = 0; l < 5; l++) {  // FPN output convs at strides 4..64
    int64_t hw = S >> (2 + l);
    snprintf(nm, sizeof nm, "fpn conv3x3 %lld @%lld", (long long)C, (long long)hw);
    add_conv(v, &nv, cap, nm, B, C, hw, C, 3, 1, 1);
  }
  // ResNet-50 (caffe style: the stride sits in the first 1x1; the 3x3s shown at stage size).
  snprintf(nm, sizeof nm, "r50 stem 7x7/2 3>64 @%lld", (long long)S);
  add_conv(v, &nv, cap, nm, B, 3, S, 64, 7, 2, 0);
  static const struct { int stage; int64_t cin, cout, k; } r50[] = {
      {1, 64, 64, 3}, {1, 64, 256, 1}, {1, 256, 64, 1}, {2, 128, 128, 3}, {2, 128, 512, 1},
      {3, 256, 256, 3}, {3, 256, 1024, 1}, {4, 512, 512, 3}, {4, 512, 2048, 1}};
  for (size_t i = 0; i < sizeof r50 / sizeof r50[0]; i++) {
    int64_t hw = S >> (r50[i].stage + 1);
    snprintf(nm, sizeof nm, "r50 l%d %lldx%lld %lld>%lld @%lld", r50[i].stage, (long long)r50[i].k,
             (long long)r50[i].k, (long long)r50[i].cin, (long long)r50[i].cout, (long long)hw);
    add_conv(v, &nv, cap, nm, B, r50[i].cin, hw, r50[i].cout, r50[i].k, 1, 1);
  }
  for (int l = 0; l < 2; l++) {  // DeformFusion's DCNv2 at the two finest levels
    int64_t hw = S >> (2 + l);
    for (int bf = 0; bf < 2 && hw >= 1; bf++) {
      snprintf(nm, sizeof nm, "dcn3x3 %lld @%lld%s", (long long)C, (long long)hw, bf ? " bf16" : "");
      kcase *q = kcase_add(v, &nv, cap, K_DCN, nm);
      if (q) q->n = B, q->c = C, q->h = q->w = hw, q->c_out = C, q->k = 3, q->p = 1, q->bf16 = bf;
    }
  }
  kcase *q;
  snprintf(nm, sizeof nm, "roi_align 7x7 %lld rois 4 lvl", (long long)(R * B));
  if ((q = kcase_add(v, &nv, cap, K_ROI, nm))) q->n = B, q->c = C, q->h = q->w = S, q->k = R * B;
  snprintf(nm, sizeof nm, "group_norm %lld/16 @%lld", (long long)C, (long long)(S / 4));
  if ((q = kcase_add(v, &nv, cap, K_GN, nm))) q->n = B, q->c = C, q->h = (S / 4) * (S / 4), q->groups = 16;
  snprintf(nm, sizeof nm, "group_norm %lld/32 %lld rois", (long long)C, (long long)(R * B));
  if ((q = kcase_add(v, &nv, cap, K_GN, nm))) q->n = R * B, q->c = C, q->h = 49, q->groups = 32;
  for (int bf = 0; bf < 2; bf++) {  // track / box head fc: 256*49 -> 1024 on every RoI
    snprintf(nm, sizeof nm, "linear %lld>1024 x%lld%s", (long long)(C * 49), (long long)(R * B), bf ? " bf16" : "");
    if ((q = kcase_add(v, &nv, cap, K_LINEAR, nm))) q->n = R * B, q->c = C * 49, q->c_out = 1024, q->bf16 = bf;
  }
  int64_t ne = B * C * (S / 4) * (S / 4);  // one FPN level-0 map
  static const struct { kop op; const char *name; } glue[] = {
      {K_RELU, "relu"}, {K_ADD, "ew_add"}, {K_AXPY, "ew_axpy"}, {K_RELU_MASK, "ew_relu_mask"}};
  for (size_t i = 0; i < sizeof glue / sizeof glue[0]; i++) {
    snprintf(nm, sizeof nm, "%s %.1fM", glue[i].name, (double)ne / 1e6);
    if ((q = kcase_add(v, &nv, cap, glue[i].op, nm))) q->n = ne;
  }
  const int64_t P = 64 * 1000 * 1000;
  if ((q = kcase_add(v, &nv, cap, K_SGD, "sgd update 64M"))) q->n = P;
  if ((q = kcase_add(v, &nv, cap, K_ADAMW, "adamw update 64M"))) q->n = P;
  if ((q = kcase_add(v, &nv, cap, K_GRAD_NORM, "grad norm 64M"))) q->n = P;
  for (int i = 0; i < nv; i++) kcase_work(&v[i]);
  return nv;
}

// Device buffers of one row.
typedef struct {
  const kcase *q;
  const device *dev;
  cudaStream_t st;
  conv2d_desc cd;
  dcn_desc dd;
  roi_align_ml_desc rd;
  float *x, *w, *b, *y, *dy, *dx, *dw, *db, *off, *mask, *doff, *dmask, *mean, *rstd, *m2;
  float *feats[4], *dfeats[4];
} kbuf;

static size_t fbytes(int64_t n) { return (size_t)(n > 0 ? n : 1) * sizeof(float); }

// n uniform floats in [lo, hi) on the device, generated on the host in 64 MB chunks.
static float *d_rand(const device *d, int64_t n, float lo, float hi, uint64_t seed, uint64_t stream) {
  float *p = dev_alloc(d, fbytes(n));
  const int64_t chunk = (int64_t)1 << 24;
  float *h = mallocCheck(fbytes(n < chunk ? n : chunk));
  for (int64_t o = 0; o < n; o += chunk) {
    int64_t m = n - o < chunk ? n - o : chunk;
    rng_fill_uniform(h, m, lo, hi, seed, stream * 4096 + (uint64_t)(o / chunk));
    dev_upload(d, p + o, h, (size_t)m * sizeof(float));
  }
  free(h);
  return p;
}

static float *d_zeros(const device *d, int64_t n) { return dev_alloc(d, fbytes(n)); }

static void kbuf_setup(kbuf *k, const kcase *q, const device *d, uint64_t seed) {
  memset(k, 0, sizeof *k);
  k->q = q, k->dev = d, k->st = (cudaStream_t)d->stream;
  int64_t n = q->n, c = q->c;
  switch (q->op) {
    case K_CONV: {
      k->cd = conv2d_make(n, c, q->h, q->w, q->c_out, q->k, q->s, q->p, 1, 1);
      int64_t ny = n * q->c_out * conv2d_out_h(&k->cd) * conv2d_out_w(&k->cd);
      int64_t nx = n * c * q->h * q->w, nw = q->c_out * c * q->k * q->k;
      k->x = d_rand(d, nx, -1, 1, seed, 1), k->w = d_rand(d, nw, -0.05f, 0.05f, seed, 2);
      k->y = d_zeros(d, ny), k->dy = d_rand(d, ny, -1, 1, seed, 3);
      k->dx = q->dx ? d_zeros(d, nx) : NULL, k->dw = d_zeros(d, nw);
      break;
    }
    case K_DCN: {
      k->dd = dcn_make(n, c, q->h, q->w, q->c_out, 3, 1, 1, 1);
      int64_t nx = n * c * q->h * q->w, ny = n * q->c_out * q->h * q->w, nw = q->c_out * c * 9;
      int64_t hw = q->h * q->w;
      k->x = d_rand(d, nx, -1, 1, seed, 1), k->w = d_rand(d, nw, -0.05f, 0.05f, seed, 2);
      k->y = d_zeros(d, ny), k->dy = d_rand(d, ny, -1, 1, seed, 3);
      k->dx = d_zeros(d, nx), k->dw = d_zeros(d, nw);
      k->off = d_rand(d, n * 18 * hw, -2, 2, seed, 4), k->mask = d_rand(d, n * 9 * hw, 0, 1, seed, 5);
      k->doff = d_zeros(d, n * 18 * hw), k->dmask = d_zeros(d, n * 9 * hw);
      break;
    }
    case K_ROI: {
      roi_align_ml_desc *r = &k->rd;
      memset(r, 0, sizeof *r);
      r->num_levels = 4, r->n = n, r->c = c, r->finest_scale = 56;
      r->out_h = r->out_w = 7, r->sampling_ratio = 0, r->aligned = 1;
      for (int l = 0; l < 4; l++) {
        int64_t s = (int64_t)4 << l;
        r->strides[l] = (float)s;
        r->hs[l] = r->ws[l] = (q->h + s - 1) / s;
        k->feats[l] = d_rand(d, n * c * r->hs[l] * r->ws[l], -1, 1, seed, 10 + (uint64_t)l);
        k->dfeats[l] = d_zeros(d, n * c * r->hs[l] * r->ws[l]);
      }
      // Boxes of 16 .. S/2 px anywhere in the image: every level gets RoIs (level 0 below 112
      // px, level 3 from 448 px at S = 1024). tools/bench_gpu_torch.py draws the same law.
      int64_t K = q->k, S = q->h;
      float *h = mallocCheck(fbytes(5 * K)), big = (float)(S / 2 > 16 ? S / 2 : 17);
      for (int64_t i = 0; i < K; i++) {
        float bw = 16 + (big - 16) * rng_uniform(seed, 7, (uint64_t)(4 * i));
        float bh = 16 + (big - 16) * rng_uniform(seed, 7, (uint64_t)(4 * i + 1));
        float x1 = ((float)S - bw) * rng_uniform(seed, 7, (uint64_t)(4 * i + 2));
        float y1 = ((float)S - bh) * rng_uniform(seed, 7, (uint64_t)(4 * i + 3));
        float *roi = h + 5 * i;
        roi[0] = (float)(i % n), roi[1] = x1, roi[2] = y1, roi[3] = x1 + bw, roi[4] = y1 + bh;
      }
      k->b = dev_alloc(d, fbytes(5 * K));  // the RoIs
      dev_upload(d, k->b, h, (size_t)(5 * K) * sizeof(float));
      free(h);
      k->y = d_zeros(d, K * c * 49), k->dy = d_rand(d, K * c * 49, -1, 1, seed, 8);
      break;
    }
    case K_GN: {
      int64_t ne = n * c * q->h;
      k->x = d_rand(d, ne, -1, 1, seed, 1), k->y = d_zeros(d, ne), k->dy = d_rand(d, ne, -1, 1, seed, 3);
      k->dx = d_zeros(d, ne);
      k->w = d_rand(d, c, 0.5f, 1.5f, seed, 2), k->b = d_rand(d, c, -0.5f, 0.5f, seed, 4);
      k->dw = d_zeros(d, c), k->db = d_zeros(d, c);
      k->mean = d_zeros(d, n * q->groups), k->rstd = d_zeros(d, n * q->groups);
      break;
    }
    case K_LINEAR:
      k->x = d_rand(d, n * c, -1, 1, seed, 1), k->w = d_rand(d, q->c_out * c, -0.01f, 0.01f, seed, 2);
      k->b = d_rand(d, q->c_out, -0.1f, 0.1f, seed, 4);
      k->y = d_zeros(d, n * q->c_out), k->dy = d_rand(d, n * q->c_out, -1, 1, seed, 3);
      k->dx = d_zeros(d, n * c), k->dw = d_zeros(d, q->c_out * c), k->db = d_zeros(d, q->c_out);
      break;
    case K_RELU: case K_ADD: case K_AXPY: case K_RELU_MASK:
      k->x = d_rand(d, n, -1, 1, seed, 1), k->dy = d_rand(d, n, -1, 1, seed, 3);
      k->y = d_zeros(d, n), k->dx = d_zeros(d, n);
      break;
    case K_SGD: case K_ADAMW: case K_GRAD_NORM:
      k->x = d_rand(d, n, -1, 1, seed, 1), k->dy = d_rand(d, n, -0.01f, 0.01f, seed, 3);  // p, g
      if (q->op != K_GRAD_NORM) k->y = d_zeros(d, n);                                     // buf / m
      if (q->op == K_ADAMW) k->m2 = d_zeros(d, n);                                        // v
      break;
  }
}

static void kbuf_free(kbuf *k) {
  float **all[] = {&k->x, &k->w, &k->b, &k->y, &k->dy, &k->dx, &k->dw, &k->db, &k->off,
                   &k->mask, &k->doff, &k->dmask, &k->mean, &k->rstd, &k->m2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (*all[i]) dev_free(k->dev, *all[i]), *all[i] = NULL;
  for (int l = 0; l < 4; l++) {
    if (k->feats[l]) dev_free(k->dev, k->feats[l]);
    if (k->dfeats[l]) dev_free(k->dev, k->dfeats[l]);
  }
}

static void kbuf_fwd(kbuf *k) {
  const kcase *q = k->q;
  switch (q->op) {
    case K_CONV: conv2d_forward_cuda(&k->cd, k->x, k->w, NULL, k->y, k->st); break;
    case K_DCN: dcn_forward_cuda(&k->dd, k->x, k->off, k->mask, k->w, NULL, k->y, k->st); break;
    case K_ROI:
      roi_align_multilevel_forward_cuda(&k->rd, (const float *const *)k->feats, q->k, k->b, k->y,
                                        NULL, k->st);
      break;
    case K_GN:
      group_norm_forward_cuda(q->n, q->c, q->h, q->groups, 1e-5f, k->x, k->w, k->b, k->y, k->mean,
                              k->rstd, k->st);
      break;
    case K_LINEAR: linear_forward_cuda(q->n, q->c, q->c_out, k->x, k->w, k->b, k->y, k->st); break;
    case K_RELU: relu_forward_cuda(q->n, k->x, k->y, k->st); break;
    case K_ADD: ew_add_cuda(q->n, k->x, k->dy, k->y, k->st); break;
    case K_AXPY: ew_axpy_cuda(q->n, 0.5f, k->x, k->y, k->st); break;
    case K_RELU_MASK: ew_relu_mask_cuda(q->n, k->x, k->dx, k->st); break;
    case K_SGD: sgd_update_cuda(k->x, k->dy, k->y, q->n, 0.01, 1e-4, 0.9, 0, k->st); break;
    case K_ADAMW:
      adamw_update_cuda(k->x, k->dy, k->y, k->m2, q->n, 1e-4, 0.05, 0.9, 0.999, 1e-8, 10, k->st);
      break;
    case K_GRAD_NORM: (void)grad_sumsq_cuda(k->dy, q->n, k->st); break;
  }
}

static void kbuf_bwd(kbuf *k) {
  const kcase *q = k->q;
  switch (q->op) {
    case K_CONV: conv2d_backward_cuda(&k->cd, k->x, k->w, k->dy, k->dx, k->dw, NULL, k->st); break;
    case K_DCN:
      dcn_backward_cuda(&k->dd, k->x, k->off, k->mask, k->w, k->dy, k->dx, k->doff, k->dmask,
                        k->dw, NULL, k->st);
      break;
    case K_ROI:
      roi_align_multilevel_backward_cuda(&k->rd, q->k, k->b, k->dy, k->dfeats, k->st);
      break;
    case K_GN:
      group_norm_backward_cuda(q->n, q->c, q->h, q->groups, k->x, k->w, k->mean, k->rstd, k->dy,
                               k->dx, k->dw, k->db, k->st);
      break;
    case K_LINEAR:
      linear_backward_cuda(q->n, q->c, q->c_out, k->x, k->w, k->dy, k->dx, k->dw, k->db, k->st);
      break;
    case K_RELU: relu_backward_cuda(q->n, k->y, k->dy, k->dx, k->st); break;
    default: break;
  }
}

static int kop_has_bwd(kop op) { return op <= K_RELU; }

// Median ms of `rep` calls of fwd (or bwd) after `warm`, CUDA events on the row's stream.
static double time_kernel(kbuf *k, int bwd, int warm, int rep) {
  for (int i = 0; i < warm; i++) bwd ? kbuf_bwd(k) : kbuf_fwd(k);
  cudaCheck(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  cudaCheck(cudaEventCreate(&e0));
  cudaCheck(cudaEventCreate(&e1));
  double t[MAX_REPEATS];
  for (int i = 0; i < rep; i++) {
    cudaCheck(cudaEventRecord(e0, k->st));
    bwd ? kbuf_bwd(k) : kbuf_fwd(k);
    cudaCheck(cudaEventRecord(e1, k->st));
    cudaCheck(cudaEventSynchronize(e1));
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, e0, e1));
    t[i] = ms;
  }
  cudaCheck(cudaEventDestroy(e0));
  cudaCheck(cudaEventDestroy(e1));
  return median(t, rep);
}

static void run_kernels(kcase *v, int nv, const device *d, int warm, int rep, uint64_t seed) {
  for (int i = 0; i < nv; i++) {
    kcase *q = &v[i];
    log_info("bench gpu: kernel %s", q->name);
    kbuf k;
    kbuf_setup(&k, q, d, seed);
    if (q->bf16) cuda_set_precision(1);
    q->fwd_ms = time_kernel(&k, 0, warm, rep);
    if (kop_has_bwd(q->op)) q->bwd_ms = time_kernel(&k, 1, warm, rep);
    if (q->bf16) cuda_set_precision(0);  // also frees the bf16 workspace
    kbuf_free(&k);
  }
  cudaCheck(cudaDeviceSynchronize());
}

// The rows as JSON for tools/bench_gpu_torch.py (one source of truth for the shapes).
static cJSON *kcases_json(const kcase *v, int nv, int64_t image) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < nv; i++) {
    const kcase *q = &v[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", q->name);
    cJSON_AddStringToObject(o, "op", kop_names[q->op]);
    cJSON_AddNumberToObject(o, "bf16", q->bf16);
    cJSON_AddNumberToObject(o, "n", (double)q->n);
    cJSON_AddNumberToObject(o, "c", (double)q->c);
    cJSON_AddNumberToObject(o, "h", (double)q->h);
    cJSON_AddNumberToObject(o, "w", (double)q->w);
    cJSON_AddNumberToObject(o, "c_out", (double)q->c_out);
    cJSON_AddNumberToObject(o, "k", (double)q->k);
    cJSON_AddNumberToObject(o, "s", (double)q->s);
    cJSON_AddNumberToObject(o, "p", (double)q->p);
    cJSON_AddNumberToObject(o, "groups", (double)q->groups);
    cJSON_AddNumberToObject(o, "dx", q->dx);
    cJSON_AddNumberToObject(o, "image", (double)image);
    cJSON_AddItemToArray(a, o);
  }
  return a;
}

static void print_rate(double work, double ms) {
  if (ms > 0 && work > 0) printf(" %10.1f", work / (ms * 1e6));
  else printf(" %10s", "-");
}

static void print_kernels(const kcase *v, int nv, int have_torch) {
  printf("\n%-30s %9s %9s %10s %10s %-7s | %9s %9s | %8s\n", "kernel", "fwd ms", "bwd ms",
         "fwd rate", "bwd rate", "unit", "torch fwd", "torch bwd", "speedup");
  for (int i = 0; i < nv; i++) {
    const kcase *q = &v[i];
    int bwd = q->bwd_ms >= 0;
    printf("%-30s %9.3f", q->name, q->fwd_ms);
    if (bwd) printf(" %9.3f", q->bwd_ms);
    else printf(" %9s", "-");
    print_rate(q->fwd_work, q->fwd_ms);
    print_rate(bwd ? q->bwd_work : 0, q->bwd_ms);
    printf(" %-7s |", q->bytes ? "GB/s" : "GFLOP/s");
    double ours = q->fwd_ms + (bwd ? q->bwd_ms : 0), theirs = q->t_fwd_ms + (bwd ? q->t_bwd_ms : 0);
    int ok = have_torch && q->t_fwd_ms > 0 && (!bwd || q->t_bwd_ms > 0);
    if (ok) {
      printf(" %9.3f", q->t_fwd_ms);
      if (bwd) printf(" %9.3f", q->t_bwd_ms);
      else printf(" %9s", "-");
      printf(" | %7.2fx\n", theirs / ours);
    } else {
      printf(" %9s %9s | %8s\n", "-", "-", "-");
    }
  }
  printf("(CUDA events, median; rate = work / time: GFLOP/s for the GEMM-based ops (conv: 2*n*c_out*c_in*kh*kw*ho*wo\n"
         " forward, backward dw + dx; dcn: its GEMM only; linear: 2*n*in*out, backward 2x), GB/s as minimum\n"
         " traffic for memory-bound ops (see csrc/cli/cmd_bench_gpu.c); bf16 rows: bf16 GEMM operands, fp32\n"
         " accumulate vs torch.autocast(bfloat16); speedup = PyTorch (fwd + bwd) / ours)\n");
}

// ---------------------------------------------------------------------------------------------
// Train step

typedef struct {
  const char *precision;
  int ok;
  int size, batch;
  double step_ms, pairs_per_s, arena_mb, dev_mb;
  double key_rois, ref_rois, det_rois;  // per pair, averaged over the timed steps
  double t_step_ms, t_pairs_per_s, t_peak_mb;
  int t_ok;
} step_row;

static double dev_used_bytes(void) {
  size_t fr = 0, tot = 0;
  cudaCheck(cudaMemGetInfo(&fr, &tot));
  return (double)(tot - fr);
}

static int run_step(const config *cfg, const device *dev, int warm, int rep, int bf16, step_row *r) {
  masa_model_cfg mc;
  optim_opts oo;
  loader_opts lo;
  if (masa_model_cfg_from_config(cfg, &mc) || optim_opts_from_config(cfg, &oo) ||
      loader_opts_from_config(cfg, &lo))
    return MASA_ERR;
  cudaCheck(cudaDeviceSynchronize());
  double used0 = dev_used_bytes();
  masa_model m;
  masa_model_build(&m, &mc);
  masa_model_init(&m, (uint64_t)config_int(cfg, "train.seed"));
  optim opt;
  optim_init(&opt, &oo, &m.params);
  param_table_to_device(&m.params, dev);
  train_stepper *st = train_stepper_open(cfg, &m);
  loader *ld = st ? loader_open(&lo, NULL) : NULL;
  if (!ld) {
    if (st) train_stepper_close(st);
    optim_free(&opt);
    masa_model_free(&m);
    return MASA_ERR;
  }
  arena ar, har;
  arena_init_on(&ar, 0, dev);
  arena_init(&har, (size_t)1 << 20);
  model_ctx ctx = {&m.params, &ar, 1, NULL, NULL, &har};
  r->size = lo.views.size, r->batch = lo.batch_size;
  cuda_set_precision(bf16);
  double t[MAX_REPEATS], rois[3] = {0, 0, 0};
  int rc = MASA_OK;
  for (int it = 0; it < warm + rep; it++) {
    const loader_batch *b = loader_next(ld);
    if (!b) {
      rc = MASA_ERR;
      break;
    }
    dev_sync(dev);
    double t0 = time_now();
    train_step_stats ss;
    train_stepper_run(st, &ctx, b, it, 0, 1, &ss);
    optim_step_info info;
    if (optim_step(&opt, &m.params, oo.lr, ss.loss, &info) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    dev_sync(dev);
    if (it >= warm) {
      t[it - warm] = 1e3 * (time_now() - t0);
      rois[0] += ss.key_rois / ss.images, rois[1] += ss.ref_rois / ss.images;
      rois[2] += ss.det_rois / ss.images;
    }
  }
  if (rc == MASA_OK) {
    r->dev_mb = (dev_used_bytes() - used0) / 1e6;  // params, moments, arena blocks, workspaces
    r->step_ms = median(t, rep);
    r->pairs_per_s = 1e3 * r->batch / r->step_ms;
    r->arena_mb = (double)ar.peak / 1e6;
    r->key_rois = rois[0] / rep, r->ref_rois = rois[1] / rep, r->det_rois = rois[2] / rep;
    r->ok = 1;
  }
  cuda_set_precision(0);
  arena_free(&ar);
  arena_free(&har);
  loader_close(ld);
  train_stepper_close(st);
  optim_free(&opt);
  masa_model_free(&m);
  cudaCheck(cudaDeviceSynchronize());
  return rc;
}

static void print_steps(const step_row *rows, int n, const char *recipe, const char *optim_name,
                        int warm, int rep, int have_torch) {
  const step_row *f = &rows[0];
  printf("\ntrain step: %s, %d pairs at %d, %s (train_stepper_run + optim_step, both ends synchronised;\n"
         "median of %d after %d warm-up; loader wait excluded)\n",
         recipe, f->batch, f->size, optim_name, rep, warm);
  printf("%-9s %10s %9s %9s %9s | %10s %9s %10s | %8s %s\n", "precision", "step ms", "pairs/s",
         "arena MB", "dev MB", "torch ms", "pairs/s", "peak MB", "speedup", "2x goal");
  for (int i = 0; i < n; i++) {
    const step_row *r = &rows[i];
    if (!r->ok) printf("%-9s %10s %9s %9s %9s |", r->precision, "failed", "-", "-", "-");
    else printf("%-9s %10.1f %9.2f %9.1f %9.1f |", r->precision, r->step_ms, r->pairs_per_s, r->arena_mb, r->dev_mb);
    if (have_torch && r->t_ok) printf(" %10.1f %9.2f %10.1f |", r->t_step_ms, r->t_pairs_per_s, r->t_peak_mb);
    else printf(" %10s %9s %10s |", "-", "-", "-");
    if (r->ok && have_torch && r->t_ok) {
      double sp = r->t_step_ms / r->step_ms;
      printf(" %7.2fx %s\n", sp, sp >= 2.0 ? "met" : "not met");
    } else {
      printf(" %8s %s\n", "-", "-");
    }
  }
  printf("(dev MB = cudaMemGetInfo in use after the steps minus before the model: parameters, gradients,\n"
         " moments, the activation arena, pooled workspaces; torch peak = max_memory_allocated;\n"
         " speedup = PyTorch step / our step; goal of issue 7: >= 2x faster than PyTorch eager)\n");
  for (int i = 0; i < n; i++)
    if (rows[i].ok)
      printf("  %s: RoIs per pair: track %.0f key / %.0f ref, box head %.0f\n", rows[i].precision,
             rows[i].key_rois, rows[i].ref_rois, rows[i].det_rois);
}

// ---------------------------------------------------------------------------------------------
// PyTorch

static cJSON *run_json(const char *cmd) {
  log_info("bench gpu: %s", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) return NULL;
  size_t cap = 1 << 20, len = 0, got;
  char *out = mallocCheck(cap);
  while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
  out[len] = 0;
  int status = pclose(p);
  char *last = out;  // the JSON is the last line
  for (char *s = out; *s; s++)
    if (*s == '\n' && s[1]) last = s + 1;
  cJSON *j = status == 0 ? cJSON_Parse(last) : NULL;
  if (!j) log_warn("bench gpu: the PyTorch side failed (status %d); showing our numbers only", status);
  free(out);
  return j;
}

static double json_num(const cJSON *j, const char *k) {
  cJSON *v = cJSON_GetObjectItem(j, k);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

// Runs tools/bench_gpu_torch.py for the selected parts; fills the t_* fields. 0 on success.
static int run_torch(const config *cfg, const device *dev, kcase *kv, int nk, step_row *sr, int ns,
                     char *torch_desc, size_t desc_n) {
  char dir[] = "/tmp/masa_bench_gpu_XXXXXX";
  if (!mkdtemp(dir)) return -1;
  char cfg_path[64], spec_path[64];
  snprintf(cfg_path, sizeof cfg_path, "%s/model.cfg", dir);
  snprintf(spec_path, sizeof spec_path, "%s/kernels.json", dir);
  int ok = 1;
  char *text = config_dump(cfg);
  FILE *f = fopen(cfg_path, "w");
  if (f) ok &= fputs(text, f) >= 0, ok &= fclose(f) == 0;
  else ok = 0;
  free(text);
  if (nk > 0) {
    cJSON *a = kcases_json(kv, nk, config_int(cfg, "aug.view_size"));
    char *s = cJSON_PrintUnformatted(a);
    f = fopen(spec_path, "w");
    if (f) ok &= fputs(s, f) >= 0, ok &= fclose(f) == 0;
    else ok = 0;
    free(s);
    cJSON_Delete(a);
  }
  // The step's RoI counts per pair come from our fp32 row (the first).
  const step_row *r = ns > 0 && sr[0].ok ? &sr[0] : NULL;
  // bench.python left at its default: the repo's .venv when there is one (the reference modules
  // need cv2, which tools/setup.sh puts there), as `masa bench train` does.
  const char *py = config_str(cfg, "bench.python");
  char venv[1024];
  snprintf(venv, sizeof venv, "%s/.venv/bin/python", src_dir());
  if (!strcmp(py, "/usr/bin/python3") && access(venv, X_OK) == 0) py = venv;
  char cmd[4096];
  int len = snprintf(cmd, sizeof cmd,
                     "%s %s/tools/bench_gpu_torch.py --device cuda:%d --config %s --warmup %lld "
                     "--repeats %lld --seed %lld --size %lld --batch %lld",
                     py, src_dir(), dev->ordinal, cfg_path,
                     (long long)config_int(cfg, "bench.warmup"), (long long)config_int(cfg, "bench.repeats"),
                     (long long)config_int(cfg, "bench.seed"), (long long)config_int(cfg, "aug.view_size"),
                     (long long)config_int(cfg, "data.batch_size"));
  if (nk > 0) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " --kernels %s", spec_path);
  if (r)
    len += snprintf(cmd + len, sizeof cmd - (size_t)len,
                    " --step --key-rois %.0f --ref-rois %.0f --det-rois %.0f --distill %d --optim %s "
                    "--lr %g --precisions fp32,bf16",
                    r->key_rois, r->ref_rois, r->det_rois, config_bool(cfg, "train.distill"),
                    config_str(cfg, "optim.type"), config_float(cfg, "optim.lr"));
  cJSON *j = ok && (nk > 0 || r) ? run_json(cmd) : NULL;
  remove(cfg_path);
  remove(spec_path);
  rmdir(dir);
  if (!j) return -1;
  cJSON *desc = cJSON_GetObjectItem(j, "device"), *ver = cJSON_GetObjectItem(j, "torch");
  snprintf(torch_desc, desc_n, "PyTorch %s on %s", cJSON_IsString(ver) ? ver->valuestring : "?",
           cJSON_IsString(desc) ? desc->valuestring : "?");
  cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "kernels")) {
    cJSON *name = cJSON_GetObjectItem(it, "name");
    if (!cJSON_IsString(name)) continue;
    for (int i = 0; i < nk; i++)
      if (!strcmp(kv[i].name, name->valuestring))
        kv[i].t_fwd_ms = json_num(it, "fwd_ms"), kv[i].t_bwd_ms = json_num(it, "bwd_ms");
  }
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "steps")) {
    cJSON *prec = cJSON_GetObjectItem(it, "precision");
    if (!cJSON_IsString(prec)) continue;
    for (int i = 0; i < ns; i++)
      if (!strcmp(sr[i].precision, prec->valuestring)) {
        sr[i].t_step_ms = json_num(it, "step_ms");
        sr[i].t_pairs_per_s = json_num(it, "pairs_per_s");
        sr[i].t_peak_mb = json_num(it, "peak_mb");
        sr[i].t_ok = sr[i].t_step_ms > 0;
      }
  }
  cJSON_Delete(j);
  return 0;
}

// ---------------------------------------------------------------------------------------------

// The recipe (default MASA-R50), then the user's --set; a synthetic SA-1B set in tmp when the
// recipe names no data.
static int load_recipe(config *cfg, const gpu_args *a, char *recipe, size_t recipe_n) {
  config_init(cfg);
  register_all_schemas(cfg);
  if (a->recipe) snprintf(recipe, recipe_n, "%s", a->recipe);
  else snprintf(recipe, recipe_n, "%s/configs/masa_r50.cfg", src_dir());
  if (config_load_file(cfg, recipe) != MASA_OK) return MASA_ERR;
  for (int i = 0; i < a->nsets; i++)
    if (config_set_arg(cfg, a->sets[i]) != MASA_OK) return MASA_ERR;
  return MASA_OK;
}

static int bench(const gpu_args *a, const device *dev) {
  char recipe[1024], tmp[] = "/tmp/masa_bench_gpu_data_XXXXXX";
  config cfg;
  int rc = load_recipe(&cfg, a, recipe, sizeof recipe), made_data = 0;
  int warm = rc == MASA_OK ? (int)config_int(&cfg, "bench.warmup") : 0;
  int rep = rc == MASA_OK ? (int)config_int(&cfg, "bench.repeats") : 1;
  if (rc == MASA_OK && (warm < 0 || rep < 1 || rep > MAX_REPEATS))
    rc = masa_error("bench gpu: bench.warmup must be >= 0 and bench.repeats in 1..%d", MAX_REPEATS);
  int64_t B = rc == MASA_OK ? config_int(&cfg, "data.batch_size") : 0;
  int64_t S = rc == MASA_OK ? config_int(&cfg, "aug.view_size") : 0;
  int64_t C = rc == MASA_OK ? config_int(&cfg, "model.channels") : 0;
  int64_t R = rc == MASA_OK ? config_int(&cfg, "bench.rois") : 0;
  if (rc == MASA_OK && (B < 1 || S < 64 || C < 1 || R < 1))
    rc = masa_error("bench gpu: data.batch_size, model.channels and bench.rois must be >= 1 and "
                    "aug.view_size >= 64");
  if (rc != MASA_OK) {
    config_free(&cfg);
    return MASA_ERR;
  }
  char devdesc[256];
  cuda_device_describe(devdesc, sizeof devdesc);
  int do_k = has_part(a, "kernels"), do_s = has_part(a, "step");
  int do_t = has_part(a, "torch") && config_bool(&cfg, "bench.torch");
  log_info("bench gpu on %s: %lld pairs at %lld, %lld channels, %lld RoIs per image, median of %d "
           "after %d warm-up", devdesc, (long long)B, (long long)S, (long long)C, (long long)R, rep, warm);

  kcase kv[64];
  int nk = 0;
  if (do_k) {
    nk = make_cases(kv, 64, B, S, C, R);
    run_kernels(kv, nk, dev, warm, rep, (uint64_t)config_int(&cfg, "bench.seed"));
  }

  step_row sr[2];
  memset(sr, 0, sizeof sr);
  sr[0].precision = "fp32", sr[1].precision = "bf16";
  int ns = 0;
  if (do_s) {
    if (!*config_str(&cfg, "data.path")) {
      if (!mkdtemp(tmp)) rc = masa_error("cannot create a temporary folder in /tmp");
      synth_opts so;
      synth_default_opts(&so);
      so.n_images = 16, so.h = 768, so.w = 1024;
      log_info("bench gpu: synthesising %lld images (%dx%d) in %s", (long long)so.n_images, so.w, so.h, tmp);
      if (rc == MASA_OK) made_data = 1, rc = synth_sa1b(&so, tmp);
      if (rc == MASA_OK) rc = config_set(&cfg, "data.path", tmp, "bench gpu");
      if (rc == MASA_OK) rc = config_set(&cfg, "data.index_dir", tmp, "bench gpu");
    }
    for (int p = 0; p < 2 && rc == MASA_OK; p++, ns++) {
      log_info("bench gpu: train step in %s, %d warm-up + %d timed", sr[p].precision, warm, rep);
      rc = run_step(&cfg, dev, warm, rep, p, &sr[p]);
    }
  }
  char torch_desc[512] = "";
  int have_torch = 0;
  if (rc == MASA_OK && do_t)
    have_torch = run_torch(&cfg, dev, kv, nk, sr, ns, torch_desc, sizeof torch_desc) == 0;
  if (made_data) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) log_warn("could not remove %s", tmp);
  }
  if (rc == MASA_OK) {
    printf("\nmasa bench gpu on %s%s%s\n", devdesc, have_torch ? "; beside " : "", have_torch ? torch_desc : "");
    if (do_k) {
      printf("kernels at MASA-R50 shapes: %lld images per view at %lld, %lld channels, %lld RoIs per image "
             "(median of %d after %d warm-up)", (long long)B, (long long)S, (long long)C, (long long)R, rep, warm);
      print_kernels(kv, nk, have_torch);
    }
    if (do_s) {
      print_steps(sr, ns, recipe, config_str(&cfg, "optim.type"), warm, rep, have_torch);
      if (have_torch && sr[0].ok && sr[0].t_ok) {
        double best = sr[0].t_step_ms / sr[0].step_ms;
        const char *which = "fp32 vs fp32";
        if (ns > 1 && sr[1].ok && sr[1].t_ok && sr[1].t_step_ms / sr[1].step_ms > best)
          best = sr[1].t_step_ms / sr[1].step_ms, which = "bf16 vs autocast bf16";
        printf("goal (train step >= 2x faster than PyTorch eager): %s (best %.2fx, %s)\n",
               best >= 2.0 ? "MET" : "NOT MET", best, which);
      }
    }
  }
  config_free(&cfg);
  return rc;
}
#endif  // MASA_HAVE_CUDA

int bench_gpu(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = MASA_EXIT_FAILURE;
  gpu_args a;
  memset(&a, 0, sizeof a);
  for (int i = 0; i + 1 < argc; i++) {
    if (!strcmp(argv[i], "--set") && a.nsets < 64) a.sets[a.nsets++] = argv[i + 1];
    if (!strcmp(argv[i], "--config")) a.recipe = argv[i + 1];
  }
  // cli_parse_common validates --config / --set against the schemas and applies --threads.
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s\n%s", argc > 256 ? "too many arguments" : masa_errmsg(), bench_gpu_usage);
  } else if (parse_args(nrest, rest, &a) != MASA_OK) {
    log_error("%s\n%s", masa_errmsg(), bench_gpu_usage);
  } else {
#ifndef MASA_HAVE_CUDA
    fprintf(stderr, "masa bench gpu: this build has no CUDA kernels (built with -DMASA_CUDA=OFF); "
                    "no GPU to benchmark\n");
    rc = MASA_EXIT_NO_GPU;
#else
    device dev = {DEV_CUDA, 0, NULL};
    if (cuda_device_count() == 0) {
      fprintf(stderr, "masa bench gpu: no CUDA device (GPU) on this machine; nothing to benchmark\n");
      rc = MASA_EXIT_NO_GPU;
    } else if (a.device && (device_parse(a.device, &dev) != MASA_OK || dev.kind != DEV_CUDA)) {
      fprintf(stderr, "masa bench gpu: %s\n",
              dev.kind == DEV_CUDA || !strncmp(a.device, "cuda", 4) ? masa_errmsg()
                                                                     : "--device expects cuda or cuda:N");
      rc = strncmp(a.device, "cuda", 4) ? MASA_EXIT_FAILURE : MASA_EXIT_NO_GPU;
    } else {
      device_activate(&dev);
      if (bench(&a, &dev) != MASA_OK) log_error("bench gpu: %s", masa_errmsg());
      else rc = 0;
    }
#endif
  }
  config_free(&cfg);
  return rc;
}
