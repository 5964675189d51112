// CUDA twins of ops/roi_align.h (RoIAlign avg mode, torchvision / mmcv aligned semantics). The CPU
// op is the reference; its header states the conventions, which hold here unchanged:
// - Layout NCHW; rois (k, 5) = [batch, x1, y1, x2, y2] in image pixels; y (k, c, out_h, out_w).
// - Sample positions and bilinear weights in float32 in torchvision's operation order, written
//   with __fadd_rn/__fmul_rn so nvcc cannot contract them into FMAs (a contracted coordinate could
//   land on the other side of a clamp than the CPU's). Out of bounds: a sample contributes 0 unless
//   -1 <= v <= size (negated test: NaN gives 0); v clamped to >= 0; a lower index >= size - 1
//   snaps to the last row/column. Bin = sum of samples / max(gh * gw, 1).
// - The CPU sums separable "taps" (sum_y wy sum_x wx x); the GPU sums per sample (torchvision's
//   order). Equal up to float32 reassociation (the GPU check allows ~1e-5).
// - Where the CPU stops with an error (batch index not an integer in [0, n), adaptive grid above
//   ROI_MAX_GRID samples per bin side) a kernel cannot: the forward writes NaN for that RoI (so the
//   loss shows it) and the backward gives it no gradient.
// - Multi-level: level from the same float32 formula as roi_align_map_level, on the device
//   (sqrtf is exact-rounded on both sides; log2f may differ by an ulp, which can only matter for a
//   RoI whose sqrt(area) / finest_scale + 1e-6 lies within an ulp of a power of two).
// Backward, two paths (roi_align_cuda_set_atomic picks; default deterministic):
// - Deterministic (gather, no atomics): a per-RoI geometry pass records the pixel rectangle each
//   RoI's samples touch; a list pass gives each 32x32 pixel tile of each image the RoIs (index
//   order) whose rectangle meets it; then one thread per input-gradient element walks its tile's
//   list and sums, in RoI order, sum_ph wy(ph) sum_pw wx(pw) dy / count. Bit-identical run to run.
//   Cost: list memory n * tiles * k * 4 bytes per level (tiles = ceil(h/32) * ceil(w/32)); work
//   per (pixel, overlapping RoI) ~ out_h * gh + (rows touching the pixel) * out_w * gw sample
//   evaluations, plus one rectangle test per listed RoI that misses the pixel.
// - Atomic (torchvision's scheme): one thread per dy element, atomicAdd of 4 bilinear corners per
//   sample. Faster for many small RoIs; the float summation order varies run to run.
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define ROI_MAX_GRID 4096  // as the CPU (ops/roi_align.c)
#define ROI_TILE 32        // pixel tile side of the deterministic backward's RoI lists
#define ROI_MAX_LEVELS 8

static int g_roi_atomic = 0;

extern "C" void roi_align_cuda_set_atomic(int on) { g_roi_atomic = on != 0; }

// Everything a kernel needs about the feature maps (one level for the single-level op).
typedef struct {
  const float *feat[ROI_MAX_LEVELS];  // forward inputs (n, c, hs[l], ws[l])
  float *dfeat[ROI_MAX_LEVELS];       // backward outputs, entries may be NULL
  int64_t hs[ROI_MAX_LEVELS], ws[ROI_MAX_LEVELS];
  float scales[ROI_MAX_LEVELS];
  int num_levels;
  int multilevel;  // 0: every RoI on level 0
  float finest_scale;
  int64_t n, c, out_h, out_w;
  int sampling_ratio, aligned;
} roi_params;

// Geometry of one RoI on its level. batch < 0 marks a RoI the CPU would reject.
typedef struct {
  int64_t batch;
  int level;
  float y1, x1, bin_h, bin_w;
  int64_t gh, gw;
  float count;
  int64_t ylo, yhi, xlo, xhi;  // pixels touched (inclusive); empty when lo > hi
} roi_geom;

// roi_align_map_level in float32, same operation order.
static __device__ int roi_level(const float *roi, int num_levels, float finest_scale) {
  float scale = sqrtf(__fmul_rn(__fsub_rn(roi[3], roi[1]), __fsub_rn(roi[4], roi[2])));
  float lv = floorf(log2f(__fadd_rn(__fdiv_rn(scale, finest_scale), 1e-6f)));
  if (!(lv >= 0.0f)) return 0;
  if (lv > (float)(num_levels - 1)) return num_levels - 1;
  return (int)lv;
}

// Adaptive grid as the CPU; -1 means "too large" (the CPU's error).
static __device__ int64_t roi_grid(int sampling_ratio, float size, int64_t out) {
  if (sampling_ratio > 0) return sampling_ratio;
  float g = ceilf(__fdiv_rn(size, (float)out));
  if (!(g > 0.0f)) return 0;
  if (g > (float)ROI_MAX_GRID) return -1;
  return (int64_t)g;
}

// Sample i of output index p along one axis: false when it contributes nothing; else the two
// pixel indices and the weight l of hi (lo gets 1 - l).
static __device__ bool roi_sample(float start, float bin, int64_t p, int64_t i, int64_t grid,
                                  int64_t size, int64_t *lo, int64_t *hi, float *l) {
  float v = __fadd_rn(__fadd_rn(start, __fmul_rn((float)p, bin)),
                      __fdiv_rn(__fmul_rn((float)i + 0.5f, bin), (float)grid));
  if (!(v >= -1.0f && v <= (float)size)) return false;  // also NaN
  if (v <= 0.0f) v = 0.0f;
  int64_t a = (int64_t)v;
  if (a >= size - 1) {
    *lo = *hi = size - 1;
    *l = 0.0f;
  } else {
    *lo = a;
    *hi = a + 1;
    *l = __fsub_rn(v, (float)a);
  }
  return true;
}

// with_box: also the touched pixel rectangle (needs a pass over the samples of both axes).
static __device__ roi_geom roi_setup(const roi_params &P, const float *roi, bool with_box) {
  roi_geom g;
  g.level = P.multilevel ? roi_level(roi, P.num_levels, P.finest_scale) : 0;
  float b = roi[0];
  g.batch = (b >= 0.0f && b < (float)P.n && b == floorf(b)) ? (int64_t)b : -1;
  const float scale = P.scales[g.level], off = P.aligned ? 0.5f : 0.0f;
  g.x1 = __fsub_rn(__fmul_rn(roi[1], scale), off);
  g.y1 = __fsub_rn(__fmul_rn(roi[2], scale), off);
  float rw = __fsub_rn(__fsub_rn(__fmul_rn(roi[3], scale), off), g.x1);
  float rh = __fsub_rn(__fsub_rn(__fmul_rn(roi[4], scale), off), g.y1);
  if (!P.aligned) {
    rw = rw < 1.0f ? 1.0f : rw;
    rh = rh < 1.0f ? 1.0f : rh;
  }
  g.bin_h = __fdiv_rn(rh, (float)P.out_h);
  g.bin_w = __fdiv_rn(rw, (float)P.out_w);
  g.gh = roi_grid(P.sampling_ratio, rh, P.out_h);
  g.gw = roi_grid(P.sampling_ratio, rw, P.out_w);
  if (g.gh < 0 || g.gw < 0) g.batch = -1;
  int64_t cnt = g.gh * g.gw;
  g.count = (float)(cnt > 1 ? cnt : 1);
  g.ylo = g.xlo = 1;
  g.yhi = g.xhi = 0;
  if (!with_box || g.batch < 0) return g;
  const int64_t H = P.hs[g.level], W = P.ws[g.level];
  int64_t lo, hi;
  float l;
  int64_t ylo = H, yhi = -1, xlo = W, xhi = -1;
  for (int64_t p = 0; p < P.out_h; p++)
    for (int64_t i = 0; i < g.gh; i++)
      if (roi_sample(g.y1, g.bin_h, p, i, g.gh, H, &lo, &hi, &l)) {
        ylo = lo < ylo ? lo : ylo;
        yhi = hi > yhi ? hi : yhi;
      }
  for (int64_t p = 0; p < P.out_w; p++)
    for (int64_t i = 0; i < g.gw; i++)
      if (roi_sample(g.x1, g.bin_w, p, i, g.gw, W, &lo, &hi, &l)) {
        xlo = lo < xlo ? lo : xlo;
        xhi = hi > xhi ? hi : xhi;
      }
  if (ylo <= yhi && xlo <= xhi) {
    g.ylo = ylo, g.yhi = yhi, g.xlo = xlo, g.xhi = xhi;
  }
  return g;
}

// y (k, c, out_h, out_w); levels (k) or NULL.
static __global__ void roi_forward_kernel(roi_params P, int64_t k, const float *__restrict__ rois,
                                          float *__restrict__ y, int *__restrict__ levels) {
  const int64_t total = k * P.c * P.out_h * P.out_w;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t pw = idx % P.out_w, ph = (idx / P.out_w) % P.out_h;
    const int64_t ch = (idx / (P.out_w * P.out_h)) % P.c, r = idx / (P.out_w * P.out_h * P.c);
    const roi_geom g = roi_setup(P, rois + r * 5, false);
    if (levels && ch == 0 && ph == 0 && pw == 0) levels[r] = g.level;
    if (g.batch < 0) {
      y[idx] = __int_as_float(0x7fc00000);  // NaN: the CPU rejects this RoI
      continue;
    }
    const int64_t H = P.hs[g.level], W = P.ws[g.level];
    const float *plane = P.feat[g.level] + (g.batch * P.c + ch) * H * W;
    float sum = 0.0f;
    for (int64_t iy = 0; iy < g.gh; iy++) {
      int64_t y0, y1;
      float ly;
      if (!roi_sample(g.y1, g.bin_h, ph, iy, g.gh, H, &y0, &y1, &ly)) continue;
      const float hy = 1.0f - ly;
      const float *r0 = plane + y0 * W, *r1 = plane + y1 * W;
      for (int64_t ix = 0; ix < g.gw; ix++) {
        int64_t x0, x1;
        float lx;
        if (!roi_sample(g.x1, g.bin_w, pw, ix, g.gw, W, &x0, &x1, &lx)) continue;
        const float hx = 1.0f - lx;
        sum += hy * hx * r0[x0] + hy * lx * r0[x1] + ly * hx * r1[x0] + ly * lx * r1[x1];
      }
    }
    y[idx] = sum / g.count;
  }
}

static __global__ void roi_geom_kernel(roi_params P, int64_t k, const float *__restrict__ rois,
                                       roi_geom *__restrict__ geoms) {
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < k;
       r += (int64_t)gridDim.x * blockDim.x)
    geoms[r] = roi_setup(P, rois + r * 5, true);
}

// For every (image, tile) of level lv: the RoIs, in index order, whose rectangle meets the tile.
// lists (ntiles, k), counts (ntiles).
static __global__ void roi_list_kernel(int64_t n, int64_t tiles_y, int64_t tiles_x, int lv,
                                       int64_t k, const roi_geom *__restrict__ geoms,
                                       int *__restrict__ lists, int *__restrict__ counts) {
  const int64_t ntiles = n * tiles_y * tiles_x;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < ntiles;
       t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t tx = t % tiles_x, ty = (t / tiles_x) % tiles_y, b = t / (tiles_x * tiles_y);
    const int64_t y0 = ty * ROI_TILE, y1 = y0 + ROI_TILE - 1, x0 = tx * ROI_TILE,
                  x1 = x0 + ROI_TILE - 1;
    int cnt = 0;
    for (int64_t r = 0; r < k; r++) {
      const roi_geom *g = &geoms[r];
      if (g->batch != b || g->level != lv) continue;
      if (g->ylo > g->yhi || g->yhi < y0 || g->ylo > y1 || g->xhi < x0 || g->xlo > x1) continue;
      lists[t * k + cnt++] = (int)r;
    }
    counts[t] = cnt;
  }
}

// Summed weight of output index p's samples on pixel q of one axis.
static __device__ float roi_axis_weight(float start, float bin, int64_t p, int64_t grid,
                                        int64_t size, int64_t q) {
  float wsum = 0.0f;
  for (int64_t i = 0; i < grid; i++) {
    int64_t lo, hi;
    float l;
    if (!roi_sample(start, bin, p, i, grid, size, &lo, &hi, &l)) continue;
    if (lo == q) wsum += 1.0f - l;
    if (hi == q) wsum += l;
  }
  return wsum;
}

// dfeat[lv] (n, c, H, W) += gathered gradient; one thread per element, RoIs in index order.
static __global__ void roi_gather_kernel(roi_params P, int lv, int64_t k, int64_t tiles_y,
                                         int64_t tiles_x, const roi_geom *__restrict__ geoms,
                                         const int *__restrict__ lists,
                                         const int *__restrict__ counts,
                                         const float *__restrict__ dy) {
  const int64_t H = P.hs[lv], W = P.ws[lv], total = P.n * P.c * H * W;
  float *dx = P.dfeat[lv];
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t x = idx % W, y = (idx / W) % H, ch = (idx / (W * H)) % P.c,
                  b = idx / (W * H * P.c);
    const int64_t t = (b * tiles_y + y / ROI_TILE) * tiles_x + x / ROI_TILE;
    const int cnt = counts[t];
    float sum = 0.0f;
    for (int i = 0; i < cnt; i++) {
      const int64_t r = lists[t * k + i];
      const roi_geom g = geoms[r];
      if (y < g.ylo || y > g.yhi || x < g.xlo || x > g.xhi) continue;
      const float *gr = dy + (r * P.c + ch) * P.out_h * P.out_w;
      float acc = 0.0f;
      for (int64_t ph = 0; ph < P.out_h; ph++) {
        const float wy = roi_axis_weight(g.y1, g.bin_h, ph, g.gh, H, y);
        if (wy == 0.0f) continue;
        float rs = 0.0f;
        for (int64_t pw = 0; pw < P.out_w; pw++) {
          const float wx = roi_axis_weight(g.x1, g.bin_w, pw, g.gw, W, x);
          if (wx != 0.0f) rs += wx * gr[ph * P.out_w + pw];
        }
        acc += wy * rs;
      }
      sum += acc / g.count;
    }
    dx[idx] += sum;
  }
}

// Atomic path: one thread per dy element (k, c, out_h, out_w).
static __global__ void roi_scatter_kernel(roi_params P, int64_t k, const roi_geom *__restrict__ geoms,
                                          const float *__restrict__ dy) {
  const int64_t total = k * P.c * P.out_h * P.out_w;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t pw = idx % P.out_w, ph = (idx / P.out_w) % P.out_h;
    const int64_t ch = (idx / (P.out_w * P.out_h)) % P.c, r = idx / (P.out_w * P.out_h * P.c);
    const roi_geom g = geoms[r];
    if (g.batch < 0 || !P.dfeat[g.level]) continue;
    const int64_t H = P.hs[g.level], W = P.ws[g.level];
    float *plane = P.dfeat[g.level] + (g.batch * P.c + ch) * H * W;
    const float gv = dy[idx] / g.count;
    for (int64_t iy = 0; iy < g.gh; iy++) {
      int64_t y0, y1;
      float ly;
      if (!roi_sample(g.y1, g.bin_h, ph, iy, g.gh, H, &y0, &y1, &ly)) continue;
      for (int64_t ix = 0; ix < g.gw; ix++) {
        int64_t x0, x1;
        float lx;
        if (!roi_sample(g.x1, g.bin_w, pw, ix, g.gw, W, &x0, &x1, &lx)) continue;
        atomicAdd(plane + y0 * W + x0, gv * (1.0f - ly) * (1.0f - lx));
        atomicAdd(plane + y0 * W + x1, gv * (1.0f - ly) * lx);
        atomicAdd(plane + y1 * W + x0, gv * ly * (1.0f - lx));
        atomicAdd(plane + y1 * W + x1, gv * ly * lx);
      }
    }
  }
}

static void roi_forward(const roi_params &P, int64_t k, const float *rois, float *y, int *levels,
                        cudaStream_t stream) {
  const int64_t total = k * P.c * P.out_h * P.out_w;
  if (total == 0) return;
  roi_forward_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(P, k, rois, y, levels);
  cudaLaunchCheck();
}

static void roi_backward(const roi_params &P, int64_t k, const float *rois, const float *dy,
                         cudaStream_t stream) {
  if (k == 0 || P.c == 0) return;
  masa_assert(k <= 0x7fffffff);
  roi_geom *geoms;
  cudaCheck(cudaMallocAsync((void **)&geoms, (size_t)k * sizeof(roi_geom), stream));
  roi_geom_kernel<<<blocks_for(k, 128), 128, 0, stream>>>(P, k, rois, geoms);
  cudaLaunchCheck();
  if (g_roi_atomic) {
    const int64_t total = k * P.c * P.out_h * P.out_w;
    roi_scatter_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(P, k, geoms, dy);
    cudaLaunchCheck();
  } else {
    for (int lv = 0; lv < P.num_levels; lv++) {
      if (!P.dfeat[lv] || P.n == 0) continue;
      const int64_t H = P.hs[lv], W = P.ws[lv];
      const int64_t tiles_y = (H + ROI_TILE - 1) / ROI_TILE, tiles_x = (W + ROI_TILE - 1) / ROI_TILE;
      const int64_t ntiles = P.n * tiles_y * tiles_x;
      int *lists, *counts;
      cudaCheck(cudaMallocAsync((void **)&lists, (size_t)(ntiles * k) * sizeof(int), stream));
      cudaCheck(cudaMallocAsync((void **)&counts, (size_t)ntiles * sizeof(int), stream));
      roi_list_kernel<<<blocks_for(ntiles, 128), 128, 0, stream>>>(P.n, tiles_y, tiles_x, lv, k,
                                                                  geoms, lists, counts);
      cudaLaunchCheck();
      roi_gather_kernel<<<blocks_for(P.n * P.c * H * W, 256), 256, 0, stream>>>(
          P, lv, k, tiles_y, tiles_x, geoms, lists, counts, dy);
      cudaLaunchCheck();
      cudaCheck(cudaFreeAsync(lists, stream));
      cudaCheck(cudaFreeAsync(counts, stream));
    }
  }
  cudaCheck(cudaFreeAsync(geoms, stream));
}

static roi_params single_params(int64_t n, int64_t c, int64_t h, int64_t w, float spatial_scale,
                                int64_t out_h, int64_t out_w, int sampling_ratio, int aligned) {
  roi_params P = {};
  P.hs[0] = h, P.ws[0] = w, P.scales[0] = spatial_scale;
  P.num_levels = 1, P.multilevel = 0, P.finest_scale = 1.0f;
  P.n = n, P.c = c, P.out_h = out_h, P.out_w = out_w;
  P.sampling_ratio = sampling_ratio, P.aligned = aligned;
  return P;
}

static roi_params multi_params(const roi_align_ml_desc *d) {
  masa_assert(d->num_levels >= 1 && d->num_levels <= ROI_MAX_LEVELS);
  roi_params P = {};
  for (int l = 0; l < d->num_levels; l++) {
    P.hs[l] = d->hs[l], P.ws[l] = d->ws[l];
    P.scales[l] = 1.0f / d->strides[l];  // on the host, as the CPU's ml_levels
  }
  P.num_levels = d->num_levels, P.multilevel = 1, P.finest_scale = d->finest_scale;
  P.n = d->n, P.c = d->c, P.out_h = d->out_h, P.out_w = d->out_w;
  P.sampling_ratio = d->sampling_ratio, P.aligned = d->aligned;
  return P;
}

extern "C" void roi_align_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, const float *x,
                                       int64_t k, const float *rois, float spatial_scale,
                                       int64_t out_h, int64_t out_w, int sampling_ratio,
                                       int aligned, float *y, cudaStream_t stream) {
  if (k == 0) return;
  roi_params P = single_params(n, c, h, w, spatial_scale, out_h, out_w, sampling_ratio, aligned);
  P.feat[0] = x;
  roi_forward(P, k, rois, y, NULL, stream);
}

extern "C" void roi_align_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                                        const float *rois, float spatial_scale, int64_t out_h,
                                        int64_t out_w, int sampling_ratio, int aligned,
                                        const float *dy, float *dx, cudaStream_t stream) {
  if (k == 0 || !dx) return;
  roi_params P = single_params(n, c, h, w, spatial_scale, out_h, out_w, sampling_ratio, aligned);
  P.dfeat[0] = dx;
  roi_backward(P, k, rois, dy, stream);
}

extern "C" void roi_align_multilevel_forward_cuda(const roi_align_ml_desc *d,
                                                  const float *const *feats, int64_t k,
                                                  const float *rois, float *y, int *levels,
                                                  cudaStream_t stream) {
  if (k == 0) return;
  roi_params P = multi_params(d);
  for (int l = 0; l < d->num_levels; l++) P.feat[l] = feats[l];
  roi_forward(P, k, rois, y, levels, stream);
}

extern "C" void roi_align_multilevel_backward_cuda(const roi_align_ml_desc *d, int64_t k,
                                                   const float *rois, const float *dy,
                                                   float *const *dfeats, cudaStream_t stream) {
  if (k == 0) return;
  roi_params P = multi_params(d);
  for (int l = 0; l < d->num_levels; l++) P.dfeat[l] = dfeats[l];
  roi_backward(P, k, rois, dy, stream);
}
