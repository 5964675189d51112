// CUDA twins of ops/dcn.h (modulated deformable conv v2, mmcv ModulatedDeformConv2d). The CPU op
// is the reference; conventions as its header: NCHW, tap (i, j) of output (oh, ow) samples
// y = (float)(oh*stride - pad + i*dil) + dy, x likewise; offsets (dy, dx) pairs y first, taps
// row-major; offsets and masks read (and their gradients written) through dcn_strides, so the
// mmcv offset reinterpretation and channel slices of a conv output need no copy.
// - mmcv's boundary rule in forward and backward: a sample is 0 (and gets no gradient for x,
//   offset or mask) unless -1 < y < h and -1 < x < w; inside, corners outside the image read 0.
//   NaN coordinates fail the test.
// - Forward: per image, tiles of output positions: a modulated im2col kernel writes
//   col (c_in*kh*kw, np) = mask * bilinear, then y_tile (c_out, np) = W (c_out, K) col (cuBLAS
//   through masa_gemm_ex, kernels/precision.cu: FP32 pedantic math, no TF32, by default; bf16
//   operands with FP32 accumulation in bf16 precision). Tiles keep col under DCN_COL_FLOATS.
// - Backward: dbias by a fixed-order block reduction; per tile dweight += dy col^T (cuBLAS, col
//   recomputed), dcol = W^T dy (cuBLAS), then one thread per (tap, position) loops over input
//   channels in order to form the offset / mask gradients (no atomics, deterministic). Like the
//   CPU, the strided offset/mask views must be one-to-one (distinct (b, ch, oh, ow) at distinct
//   addresses), which every layout in dcn.h is.
// - Backward dx (the col2im scatter of mask * bilinear weight * dcol), two paths chosen by the
//   process-wide cuda_deterministic() (kernels/conv_cudnn.cu; recipe key device.deterministic):
//   * deterministic (the default; no atomics, bit-identical run to run): the sampling positions
//     do not depend on the channel (one offset/mask group), so per image and chunk of at most
//     DCN_DX_ENTRIES / (4 taps) positions of a tile, the (target pixel, contribution id) pairs of
//     all taps x positions x 4 corners are listed (id = (t * nq + position) * 4 + corner; corners
//     outside the image and samples out of range get the key h*w, which sorts last and is
//     dropped: exactly the atomic path's conditions), sorted by pixel with CUB's stable radix
//     sort (ties keep ascending id), and every pixel's run located. Then one thread per
//     (channel, pixel) sums its run in sorted order, each term (dcol * mask) * weight as the
//     atomic path forms it, into a float starting at 0, and adds the sum to dx once. Chunks and
//     tiles run in a fixed order, so the float sums are the same every run. Scratch: one
//     grow-only device workspace (about 40 bytes per listed corner plus 8 per input pixel and
//     CUB's temporary storage), never a cudaMalloc per call once it has reached the largest size.
//     Cost over the atomic path: the sort and the list (independent of the channel count), and
//     c_in reads of the sorted list.
//   * atomic (device.deterministic false): the same per-(tap, position) thread also scatters dx
//     with atomicAdd over the channels (float sums in arrival order, varying run to run).
//   Both add to the dx the caller passes (accumulate), as the CPU does; they differ from it and
//   from each other only by float32 summation order.
#include <cub/cub.cuh>
#include <limits.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#ifndef DCN_COL_FLOATS
#define DCN_COL_FLOATS ((int64_t)16 << 20)  // 64 MB column buffer per call at most
#endif
#ifndef DCN_DX_ENTRIES
#define DCN_DX_ENTRIES ((int64_t)1 << 21)  // corners listed per deterministic dx chunk (~80 MB)
#endif

// Sample of tap t at output position q (= oh*wo + ow) of image b: returns false when the sample is
// out of range (value and all gradients 0); else corner (y0, x0), fractions, and the mask.
struct dcn_sample {
  int64_t y0, x0;
  float ly, lx, m;
  int64_t off_y;  // element index of the y offset (x is off_y + off.channel)
  int64_t msk;    // element index of the mask
};

static __host__ __device__ bool dcn_locate(const dcn_desc &d, const float *__restrict__ offset,
                                           const float *__restrict__ mask, int64_t b, int64_t t,
                                           int64_t q, dcn_sample *s) {
  const int64_t i = t / d.kw, j = t % d.kw, oh = q / d.wo, ow = q % d.wo;
  s->off_y = b * d.off.batch + 2 * t * d.off.channel + oh * d.off.row + ow;
  s->msk = b * d.msk.batch + t * d.msk.channel + oh * d.msk.row + ow;
  s->m = mask[s->msk];
  const float y = (float)(oh * d.stride - d.pad + i * d.dil) + offset[s->off_y];
  const float x = (float)(ow * d.stride - d.pad + j * d.dil) + offset[s->off_y + d.off.channel];
  if (!(y > -1.0f && y < (float)d.h && x > -1.0f && x < (float)d.w)) return false;
  const float y0 = floorf(y), x0 = floorf(x);
  s->y0 = (int64_t)y0;
  s->x0 = (int64_t)x0;
  s->ly = y - y0;
  s->lx = x - x0;
  return true;
}

// The four corners of a located sample, 0 outside the plane xc (h, w).
static __device__ void dcn_corners(const dcn_desc &d, const float *__restrict__ xc,
                                   const dcn_sample &s, float v[4]) {
  const bool r0 = s.y0 >= 0, r1 = s.y0 + 1 < d.h, c0 = s.x0 >= 0, c1 = s.x0 + 1 < d.w;
  const float *p = xc + s.y0 * d.w + s.x0;
  v[0] = r0 && c0 ? p[0] : 0.0f;
  v[1] = r0 && c1 ? p[1] : 0.0f;
  v[2] = r1 && c0 ? p[d.w] : 0.0f;
  v[3] = r1 && c1 ? p[d.w + 1] : 0.0f;
}

// col (c_in*taps, np): column q - p0 of image b.
static __global__ void dcn_im2col_kernel(dcn_desc d, const float *__restrict__ x,
                                         const float *__restrict__ offset,
                                         const float *__restrict__ mask, int64_t b, int64_t p0,
                                         int64_t np, float *__restrict__ col) {
  const int64_t taps = d.kh * d.kw, total = d.c_in * taps * np;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, t = (idx / np) % taps, c = idx / (np * taps);
    dcn_sample s;
    float out = 0.0f;
    if (dcn_locate(d, offset, mask, b, t, p0 + p, &s)) {
      float v[4];
      dcn_corners(d, x + (b * d.c_in + c) * d.h * d.w, s, v);
      const float a = s.ly, e = s.lx, ha = 1.0f - a, he = 1.0f - e;
      out = s.m * (ha * he * v[0] + ha * e * v[1] + a * he * v[2] + a * e * v[3]);
    }
    col[idx] = out;
  }
}

// One thread per (tap, position) of the tile; channels in order. dcol (c_in*taps, np). dx NULL:
// offset / mask gradients only (dx by the deterministic path, or not wanted).
static __global__ void dcn_col2im_kernel(dcn_desc d, const float *__restrict__ x,
                                         const float *__restrict__ offset,
                                         const float *__restrict__ mask, int64_t b, int64_t p0,
                                         int64_t np, const float *__restrict__ dcol,
                                         float *__restrict__ dx, float *__restrict__ doffset,
                                         float *__restrict__ dmask) {
  const int64_t taps = d.kh * d.kw, total = taps * np;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, t = idx / np;
    dcn_sample s;
    if (!dcn_locate(d, offset, mask, b, t, p0 + p, &s)) continue;  // all gradients 0
    const float a = s.ly, e = s.lx, ha = 1.0f - a, he = 1.0f - e;
    const bool r0 = s.y0 >= 0, r1 = s.y0 + 1 < d.h, c0 = s.x0 >= 0, c1 = s.x0 + 1 < d.w;
    float gy = 0.0f, gx = 0.0f, gm = 0.0f;
    for (int64_t c = 0; c < d.c_in; c++) {
      const float g0 = dcol[(c * taps + t) * np + p], gmv = g0 * s.m;
      const int64_t plane = (b * d.c_in + c) * d.h * d.w;
      if (doffset || dmask) {
        float v[4];
        dcn_corners(d, x + plane, s, v);
        gm += g0 * (ha * he * v[0] + ha * e * v[1] + a * he * v[2] + a * e * v[3]);
        gy += gmv * (he * (v[2] - v[0]) + e * (v[3] - v[1]));
        gx += gmv * (ha * (v[1] - v[0]) + a * (v[3] - v[2]));
      }
      if (dx) {
        float *q = dx + plane + s.y0 * d.w + s.x0;
        if (r0 && c0) atomicAdd(q, gmv * (ha * he));
        if (r0 && c1) atomicAdd(q + 1, gmv * (ha * e));
        if (r1 && c0) atomicAdd(q + d.w, gmv * (a * he));
        if (r1 && c1) atomicAdd(q + d.w + 1, gmv * (a * e));
      }
    }
    if (doffset) {
      doffset[s.off_y] += gy;
      doffset[s.off_y + d.off.channel] += gx;
    }
    if (dmask) dmask[s.msk] += gm;
  }
}

// ---- deterministic dx: list, sort, gather ----
// One chunk: positions p0 + q0 + [0, nq) of image b, whose dcol columns are q0 + [0, nq) of the
// tile's dcol (c_in*taps, np). The item functions are __host__ __device__ so that a host loop can
// replay the kernels' index logic against the CPU op.

// Corners of tap t at chunk position pp (idx = t * nq + pp): key[4 idx + k] = target pixel
// (y * w + x) of corner k (top-left, top-right, bottom-left, bottom-right) or h*w when it gets no
// gradient (the atomic path's conditions), id = 4 idx + k, wc its bilinear weight; per sample
// its dcol column for channel 0 (colx) and mask (mt).
static __host__ __device__ void dcn_dx_list_item(const dcn_desc &d,
                                                 const float *__restrict__ offset,
                                                 const float *__restrict__ mask, int64_t b,
                                                 int64_t p0, int64_t np, int64_t q0, int64_t nq,
                                                 int64_t idx, unsigned *__restrict__ key,
                                                 int *__restrict__ id, float *__restrict__ wc,
                                                 int *__restrict__ colx, float *__restrict__ mt) {
  const int64_t pp = idx % nq, t = idx / nq;
  const unsigned none = (unsigned)(d.h * d.w);
  for (int k = 0; k < 4; k++) {
    key[4 * idx + k] = none;
    id[4 * idx + k] = (int)(4 * idx + k);
    wc[4 * idx + k] = 0.0f;
  }
  colx[idx] = (int)(t * np + q0 + pp);
  mt[idx] = 0.0f;
  dcn_sample s;
  if (!dcn_locate(d, offset, mask, b, t, p0 + q0 + pp, &s)) return;
  mt[idx] = s.m;
  const float a = s.ly, e = s.lx, ha = 1.0f - a, he = 1.0f - e;
  const bool r0 = s.y0 >= 0, r1 = s.y0 + 1 < d.h, c0 = s.x0 >= 0, c1 = s.x0 + 1 < d.w;
  const int64_t tl = s.y0 * d.w + s.x0;  // may be negative; only the valid corners are used
  if (r0 && c0) key[4 * idx] = (unsigned)tl, wc[4 * idx] = ha * he;
  if (r0 && c1) key[4 * idx + 1] = (unsigned)(tl + 1), wc[4 * idx + 1] = ha * e;
  if (r1 && c0) key[4 * idx + 2] = (unsigned)(tl + d.w), wc[4 * idx + 2] = a * he;
  if (r1 && c1) key[4 * idx + 3] = (unsigned)(tl + d.w + 1), wc[4 * idx + 3] = a * e;
}

// Sorted entry e of n: marks the run of its pixel ([lo, hi) per pixel, preset to 0: empty) and
// gathers its term's operands in sorted order (dcol column, mask, weight).
static __host__ __device__ void dcn_dx_runs_item(int64_t hw_in, int64_t n, int64_t e,
                                                 const unsigned *__restrict__ key,
                                                 const int *__restrict__ id,
                                                 const float *__restrict__ wc,
                                                 const int *__restrict__ colx,
                                                 const float *__restrict__ mt, int *__restrict__ lo,
                                                 int *__restrict__ hi, int *__restrict__ col_s,
                                                 float *__restrict__ m_s, float *__restrict__ w_s) {
  const unsigned k = key[e];
  if ((int64_t)k >= hw_in) return;  // no gradient; these sort last
  if (e == 0 || key[e - 1] != k) lo[k] = (int)e;
  if (e == n - 1 || key[e + 1] != k) hi[k] = (int)(e + 1);
  const int i = id[e];
  col_s[e] = colx[i >> 2];
  m_s[e] = mt[i >> 2];
  w_s[e] = wc[i];
}

// Item idx = c * hw_in + pixel: dx of that pixel += its run's terms summed in sorted order.
// dcol (c_in*taps, np); dxb: image b's dx (c_in, h, w).
static __host__ __device__ void dcn_dx_sum_item(int64_t hw_in, int64_t taps, int64_t np,
                                                int64_t idx, const int *__restrict__ lo,
                                                const int *__restrict__ hi,
                                                const int *__restrict__ col_s,
                                                const float *__restrict__ m_s,
                                                const float *__restrict__ w_s,
                                                const float *__restrict__ dcol,
                                                float *__restrict__ dxb) {
  const int64_t pix = idx % hw_in, c = idx / hw_in;
  const int64_t e0 = lo[pix], e1 = hi[pix];
  if (e0 == e1) return;
  const float *g = dcol + c * taps * np;
  float acc = 0.0f;
  for (int64_t e = e0; e < e1; e++) acc += (g[col_s[e]] * m_s[e]) * w_s[e];
  dxb[idx] += acc;
}

static __global__ void dcn_dx_list_kernel(dcn_desc d, const float *__restrict__ offset,
                                          const float *__restrict__ mask, int64_t b, int64_t p0,
                                          int64_t np, int64_t q0, int64_t nq,
                                          unsigned *__restrict__ key, int *__restrict__ id,
                                          float *__restrict__ wc, int *__restrict__ colx,
                                          float *__restrict__ mt) {
  const int64_t total = d.kh * d.kw * nq;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x)
    dcn_dx_list_item(d, offset, mask, b, p0, np, q0, nq, idx, key, id, wc, colx, mt);
}

static __global__ void dcn_dx_runs_kernel(int64_t hw_in, int64_t n,
                                          const unsigned *__restrict__ key,
                                          const int *__restrict__ id, const float *__restrict__ wc,
                                          const int *__restrict__ colx,
                                          const float *__restrict__ mt, int *__restrict__ lo,
                                          int *__restrict__ hi, int *__restrict__ col_s,
                                          float *__restrict__ m_s, float *__restrict__ w_s) {
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x)
    dcn_dx_runs_item(hw_in, n, e, key, id, wc, colx, mt, lo, hi, col_s, m_s, w_s);
}

static __global__ void dcn_dx_sum_kernel(int64_t c_in, int64_t hw_in, int64_t taps, int64_t np,
                                         const int *__restrict__ lo, const int *__restrict__ hi,
                                         const int *__restrict__ col_s,
                                         const float *__restrict__ m_s,
                                         const float *__restrict__ w_s,
                                         const float *__restrict__ dcol, float *__restrict__ dxb) {
  const int64_t total = c_in * hw_in;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x)
    dcn_dx_sum_item(hw_in, taps, np, idx, lo, hi, col_s, m_s, w_s, dcol, dxb);
}

// Positions per deterministic dx chunk: at most DCN_DX_ENTRIES listed corners (at least one
// position).
static int64_t dcn_dx_chunk_positions(const dcn_desc *d) {
  const int64_t per = 4 * d->kh * d->kw;
  return DCN_DX_ENTRIES / per > 1 ? DCN_DX_ENTRIES / per : 1;
}

// Bits that hold the keys 0 .. h*w (h*w: no gradient).
static int dcn_dx_key_bits(int64_t hw_in) {
  int bits = 1;
  while (((int64_t)1 << bits) <= hw_in) bits++;
  return bits;
}

static cuda_workspace g_dx_ws = {NULL, 0, NULL, 0, 0, "DCN dx workspace"};

// Carves 256-byte aligned pieces out of one buffer (base NULL: only measures).
typedef struct {
  char *base;
  size_t off;
} dcn_carver;

static void *dcn_carve(dcn_carver *cv, size_t bytes) {
  const size_t at = (cv->off + 255) / 256 * 256;
  cv->off = at + bytes;
  return cv->base ? cv->base + at : NULL;
}

typedef struct {
  unsigned *key_in, *key_out;
  int *id_in, *id_out, *colx, *lo, *hi, *col_s;
  float *wc, *mt, *m_s, *w_s;
  void *temp;
} dcn_dx_ws;

// n listed corners (n / 4 samples), hw_in pixels; returns the bytes used.
static size_t dcn_dx_layout(dcn_carver *cv, dcn_dx_ws *w, int64_t n, int64_t hw_in,
                            size_t temp_bytes) {
  const size_t e = (size_t)n, s = (size_t)(n / 4);
  w->key_in = (unsigned *)dcn_carve(cv, e * sizeof(unsigned));
  w->key_out = (unsigned *)dcn_carve(cv, e * sizeof(unsigned));
  w->id_in = (int *)dcn_carve(cv, e * sizeof(int));
  w->id_out = (int *)dcn_carve(cv, e * sizeof(int));
  w->wc = (float *)dcn_carve(cv, e * sizeof(float));
  w->colx = (int *)dcn_carve(cv, s * sizeof(int));
  w->mt = (float *)dcn_carve(cv, s * sizeof(float));
  w->col_s = (int *)dcn_carve(cv, e * sizeof(int));
  w->m_s = (float *)dcn_carve(cv, e * sizeof(float));
  w->w_s = (float *)dcn_carve(cv, e * sizeof(float));
  w->lo = (int *)dcn_carve(cv, 2 * (size_t)hw_in * sizeof(int));  // lo then hi, one memset
  w->hi = cv->base ? w->lo + hw_in : NULL;
  w->temp = dcn_carve(cv, temp_bytes);
  return cv->off;
}

// dx of image b += the scatter of the tile p0 + [0, np) whose dcol (c_in*taps, np) is given, in
// chunks of positions, each listed, sorted and gathered as described at the top.
static void dcn_dx_deterministic(const dcn_desc *d, const float *offset, const float *mask,
                                 int64_t b, int64_t p0, int64_t np, const float *dcol, float *dx,
                                 cudaStream_t stream) {
  const int64_t taps = d->kh * d->kw, hw_in = d->h * d->w, chunk = dcn_dx_chunk_positions(d);
  // 32-bit keys, ids, run bounds and dcol columns.
  masa_assert(hw_in < INT_MAX && 4 * taps * chunk <= INT_MAX && taps * np <= INT_MAX);
  const int bits = dcn_dx_key_bits(hw_in);
  float *dxb = dx + b * d->c_in * hw_in;
  for (int64_t q0 = 0; q0 < np; q0 += chunk) {
    const int64_t nq = np - q0 < chunk ? np - q0 : chunk, n = 4 * taps * nq;
    size_t temp_bytes = 0;
    cudaCheck(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, (unsigned *)NULL, (unsigned *)NULL,
                                              (int *)NULL, (int *)NULL, (int)n, 0, bits, stream));
    dcn_dx_ws w;
    dcn_carver measure = {NULL, 0};
    const size_t need = dcn_dx_layout(&measure, &w, n, hw_in, temp_bytes);
    dcn_carver cv = {(char *)cuda_workspace_get(&g_dx_ws, need, stream), 0};
    dcn_dx_layout(&cv, &w, n, hw_in, temp_bytes);
    dcn_dx_list_kernel<<<blocks_for(taps * nq, 256), 256, 0, stream>>>(
        *d, offset, mask, b, p0, np, q0, nq, w.key_in, w.id_in, w.wc, w.colx, w.mt);
    cudaLaunchCheck();
    // Stable: equal pixels keep ascending id, so every run has one fixed order.
    cudaCheck(cub::DeviceRadixSort::SortPairs(w.temp, temp_bytes, w.key_in, w.key_out, w.id_in,
                                              w.id_out, (int)n, 0, bits, stream));
    cudaCheck(cudaMemsetAsync(w.lo, 0, 2 * (size_t)hw_in * sizeof(int), stream));
    dcn_dx_runs_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(
        hw_in, n, w.key_out, w.id_out, w.wc, w.colx, w.mt, w.lo, w.hi, w.col_s, w.m_s, w.w_s);
    cudaLaunchCheck();
    dcn_dx_sum_kernel<<<blocks_for(d->c_in * hw_in, 256), 256, 0, stream>>>(
        d->c_in, hw_in, taps, np, w.lo, w.hi, w.col_s, w.m_s, w.w_s, dcol, dxb);
    cudaLaunchCheck();
  }
}

// y (c_out, hw) of one image += bias.
static __global__ void dcn_bias_kernel(int64_t n, int64_t c_out, int64_t hw,
                                       const float *__restrict__ bias, float *__restrict__ y) {
  const int64_t total = n * c_out * hw;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x)
    y[idx] += bias[(idx / hw) % c_out];
}

static void dcn_validate_cuda(const dcn_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride > 0 && d->pad >= 0 && d->dil > 0);
  masa_assert(d->ho == (d->h + 2 * d->pad - d->dil * (d->kh - 1) - 1) / d->stride + 1);
  masa_assert(d->wo == (d->w + 2 * d->pad - d->dil * (d->kw - 1) - 1) / d->stride + 1);
  masa_assert(d->ho > 0 && d->wo > 0);
  masa_assert(d->h < (1 << 24) && d->w < (1 << 24));
  masa_assert(d->c_in * d->kh * d->kw <= INT_MAX && d->c_out <= INT_MAX &&
              d->ho * d->wo <= INT_MAX);
}

// Positions per tile so that the column buffer stays under DCN_COL_FLOATS.
static int64_t dcn_tile_positions(const dcn_desc *d) {
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo;
  int64_t cap = DCN_COL_FLOATS / K;
  if (cap < 1) cap = 1;
  return cap < hw ? cap : hw;
}

extern "C" void dcn_forward_cuda(const dcn_desc *d, const float *x, const float *offset,
                                 const float *mask, const float *weight, const float *bias,
                                 float *y, cudaStream_t stream) {
  dcn_validate_cuda(d);
  if (d->n == 0) return;
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo, cap = dcn_tile_positions(d);
  float *col;
  cudaCheck(cudaMallocAsync((void **)&col, (size_t)(K * cap) * sizeof(float), stream));
  for (int64_t b = 0; b < d->n; b++) {
    for (int64_t p0 = 0; p0 < hw; p0 += cap) {
      const int64_t np = hw - p0 < cap ? hw - p0 : cap;
      dcn_im2col_kernel<<<blocks_for(K * np, 256), 256, 0, stream>>>(*d, x, offset, mask, b, p0, np,
                                                                    col);
      cudaLaunchCheck();
      // Row-major y_tile (c_out, np) = W (c_out, K) col (K, np); column-major that is
      // y^T (np, c_out) = col^T (np, K) W^T (K, c_out), both operands untransposed views.
      masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_N, (int)np, (int)d->c_out, (int)K, 1.0f, col,
                   (int)np, weight, (int)K, 0.0f, y + b * d->c_out * hw + p0, (int)hw);
    }
  }
  if (bias) {
    dcn_bias_kernel<<<blocks_for(d->n * d->c_out * hw, 256), 256, 0, stream>>>(d->n, d->c_out, hw,
                                                                              bias, y);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(col, stream));
}

extern "C" void dcn_backward_cuda(const dcn_desc *d, const float *x, const float *offset,
                                  const float *mask, const float *weight, const float *dy,
                                  float *dx, float *doffset, float *dmask, float *dweight,
                                  float *dbias, cudaStream_t stream) {
  dcn_validate_cuda(d);
  if (d->n == 0) return;
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo, taps = d->kh * d->kw;
  if (dbias) {
    channel_sum_accumulate_cuda(d->n, d->c_out, hw, dy, dbias, stream);
  }
  const int need_dcol = dx || doffset || dmask;
  if (!dweight && !need_dcol) return;
  // dx by the sorted gather (deterministic) or by atomics in the offset/mask kernel.
  float *dx_atomic = dx && !cuda_deterministic() ? dx : NULL;
  const int64_t cap = dcn_tile_positions(d);
  float *col;
  cudaCheck(cudaMallocAsync((void **)&col, (size_t)(K * cap) * sizeof(float), stream));
  for (int64_t b = 0; b < d->n; b++) {
    const float *dyb = dy + b * d->c_out * hw;
    for (int64_t p0 = 0; p0 < hw; p0 += cap) {
      const int64_t np = hw - p0 < cap ? hw - p0 : cap;
      if (dweight) {
        dcn_im2col_kernel<<<blocks_for(K * np, 256), 256, 0, stream>>>(*d, x, offset, mask, b, p0,
                                                                      np, col);
        cudaLaunchCheck();
        // dW (c_out, K) += dy_tile (c_out, np) col^T; column-major: dW^T (K, c_out) =
        // (col^T)^T (K, np) dy^T (np, c_out), where col^T / dy^T are the column-major views.
        masa_gemm_ex(stream, CUBLAS_OP_T, CUBLAS_OP_N, (int)K, (int)d->c_out, (int)np, 1.0f, col,
                     (int)np, dyb + p0, (int)hw, 1.0f, dweight, (int)K);
      }
      if (!need_dcol) continue;
      // dcol (K, np) = W^T (K, c_out) dy_tile (c_out, np); column-major: dcol^T (np, K) =
      // dy^T (np, c_out) W (c_out, K), W being the transpose of the view W^T (K, c_out).
      masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_T, (int)np, (int)K, (int)d->c_out, 1.0f,
                   dyb + p0, (int)hw, weight, (int)K, 0.0f, col, (int)np);
      if (dx_atomic || doffset || dmask) {
        dcn_col2im_kernel<<<blocks_for(taps * np, 128), 128, 0, stream>>>(
            *d, x, offset, mask, b, p0, np, col, dx_atomic, doffset, dmask);
        cudaLaunchCheck();
      }
      if (dx && !dx_atomic) dcn_dx_deterministic(d, offset, mask, b, p0, np, col, dx, stream);
    }
  }
  cudaCheck(cudaFreeAsync(col, stream));
}
