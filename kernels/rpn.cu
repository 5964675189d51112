// RPN proposals on the GPU: the twin of rpn_proposals (model/rpn.h) for one image, step by step in
// the CPU's order and float operations, so that only the survivors travel to the host:
//  1. per level: sigmoid of the logits in (y, x, a) order; when 0 < nms_pre < count, a stable
//     descending radix sort (CUB, stable) of (key, index) and the first nms_pre. The key is the
//     score's bits made order-preserving, with every NaN mapped to the largest key and -0 to +0:
//     argsort_desc_stable's order exactly (NaN first, ties by lower index);
//  2. gather: anchors from the level's base anchors (anchor_generator_base, computed on the host)
//     plus (float)x * stride, (float)y * stride as anchor_generator_grid does (bit for bit), the
//     deltas, delta_xywh_decode's float operations (_rn intrinsics: no FMA contraction), and the
//     min_bbox_size flag (w > min && h > min, NaN fails);
//  3. order-keeping compaction of the flagged candidates (cub::DeviceSelect::Flagged);
//  4. batched_nms_cpu: the max coordinate with its scan semantics (max ignoring NaN, but NaN when
//     the first coordinate is NaN), boxes shifted by level * (max + 1) in float32, a stable
//     descending sort by score, then torchvision's bitmask NMS on the sorted shifted boxes with
//     nms_cpu's IoU float operations and max/min tie rules (IoU > thr strict; 0/0 NaN suppresses
//     nothing). With n >= split_thr, batched_nms_cpu suppresses level by level and sorts the
//     survivors by score: that is the same bitmask with bits only between boxes of one level
//     (each level's visiting order is the global order restricted to it, and the final stable
//     sort by score is the global order restricted to the survivors);
//  5. a one-block reduction over the sorted boxes keeps the first max_per_img survivors; they are
//     gathered and copied to the host.
// exp: glibc's expf is correctly rounded in all but vanishingly rare cases; CUDA's expf is not
// (up to 2 ulp), so exp is evaluated in double and rounded to float, which is correctly rounded
// except when the double result lies within its own error of a float rounding midpoint. Scores
// and box sizes therefore match the CPU bit for bit except in such rare cases, where one ulp can
// move a tie in the top-k or flip an IoU decision at the threshold.
// Indices are int32 inside the sorts (asserted: counts < 2^31); kernel index math is 64-bit.
#include <cub/cub.cuh>
#include <math.h>
#include <stdint.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

typedef unsigned long long u64;

#define RPN_THREADS 256
#define RPN_MAX_ANCHORS 16
#define NMS_COLS 64  // boxes per mask word

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

// ---- the CPU's scalar functions, operation for operation ----

// expf, correctly rounded but for a double's error at a float midpoint (see the top).
static __device__ __forceinline__ float exp_ref(float x) { return (float)exp((double)x); }

// sigmoid_forward_cpu.
static __device__ __forceinline__ float sigmoid_ref(float v) {
  if (v >= 0.0f) return __fdiv_rn(1.0f, __fadd_rn(1.0f, exp_ref(-v)));
  float e = exp_ref(v);
  return __fdiv_rn(e, __fadd_rn(1.0f, e));
}

// Descending radix key with argsort_desc_stable's order: NaN above everything, -0 == +0, then the
// IEEE order (positive floats: sign bit set; negative floats: all bits flipped).
static __device__ __forceinline__ unsigned desc_key(float s) {
  if (isnan(s)) return 0xFFFFFFFFu;
  unsigned u = s == 0.0f ? 0u : __float_as_uint(s);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// bbox_coder.c's clampf (torch.clamp_: NaN passes).
static __device__ __forceinline__ float clamp_ref(float v, float lo, float hi) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

// nms.c's maxf_ / minf_ (std::max / std::min: first argument kept on ties and NaN second).
static __device__ __forceinline__ float max_ref(float a, float b) { return a < b ? b : a; }
static __device__ __forceinline__ float min_ref(float a, float b) { return b < a ? b : a; }

// ---- step 1: per-level keys ----

// keys[i], vals[i] = (desc_key(sigmoid(logit i)), i), i = (y * w + x) * A + a; cls (A, h, w).
static __global__ void level_keys_kernel(const float *cls, int64_t hw, int na, int64_t cnt,
                                         unsigned *keys, int *vals) {
  GRID_STRIDE(i, cnt) {
    int64_t p = i / na, a = i % na;
    keys[i] = desc_key(sigmoid_ref(cls[a * hw + p]));
    vals[i] = (int)i;
  }
}

// ---- step 2: gather, decode, flag ----

typedef struct {
  const float *cls, *reg;  // (A, h, w), (4A, h, w) of the image
  int64_t w, hw;
  int na, level;
  float stride;
  int64_t src_offset;  // flat anchor index of the level's first anchor
  int64_t out_offset;  // first candidate slot of the level
  float base[4 * RPN_MAX_ANCHORS];
} level_args;

typedef struct {
  float means[4], stds[4];
  float max_ratio;  // (float)|log(wh_ratio_clip)|, rounded on the host as bbox_coder.c does
  int clip;
  float img_h, img_w;
  int filter;  // min_bbox_size >= 0
  float min_size;
} decode_args;

// Candidate q of the level: anchor order[q] (q itself when order is NULL).
static __global__ void level_decode_kernel(level_args la, decode_args da, const int *order,
                                           int64_t keep, float *cand_box, float *cand_score,
                                           int64_t *cand_src, int *cand_level,
                                           unsigned char *flags, int *cand_id) {
  GRID_STRIDE(q, keep) {
    int64_t i = order ? (int64_t)order[q] : q;
    int64_t p = i / la.na, a = i % la.na, y = p / la.w, x = p % la.w;
    // anchor_generator_grid: base + (float)x * stride.
    float sx = __fmul_rn((float)x, la.stride), sy = __fmul_rn((float)y, la.stride);
    float p0 = __fadd_rn(la.base[4 * a + 0], sx), p1 = __fadd_rn(la.base[4 * a + 1], sy);
    float p2 = __fadd_rn(la.base[4 * a + 2], sx), p3 = __fadd_rn(la.base[4 * a + 3], sy);
    // delta_xywh_decode.
    float d[4];
    for (int j = 0; j < 4; j++)
      d[j] = __fadd_rn(__fmul_rn(la.reg[(a * 4 + j) * la.hw + p], da.stds[j]), da.means[j]);
    float px = __fmul_rn(__fadd_rn(p0, p2), 0.5f), py = __fmul_rn(__fadd_rn(p1, p3), 0.5f);
    float pw = __fsub_rn(p2, p0), ph = __fsub_rn(p3, p1);
    float dw = clamp_ref(d[2], -da.max_ratio, da.max_ratio);
    float dh = clamp_ref(d[3], -da.max_ratio, da.max_ratio);
    float gx = __fadd_rn(px, __fmul_rn(pw, d[0])), gy = __fadd_rn(py, __fmul_rn(ph, d[1]));
    float gw = __fmul_rn(pw, exp_ref(dw)), gh = __fmul_rn(ph, exp_ref(dh));
    float b[4] = {__fsub_rn(gx, __fmul_rn(gw, 0.5f)), __fsub_rn(gy, __fmul_rn(gh, 0.5f)),
                  __fadd_rn(gx, __fmul_rn(gw, 0.5f)), __fadd_rn(gy, __fmul_rn(gh, 0.5f))};
    if (da.clip) {
      b[0] = clamp_ref(b[0], 0.0f, da.img_w);
      b[2] = clamp_ref(b[2], 0.0f, da.img_w);
      b[1] = clamp_ref(b[1], 0.0f, da.img_h);
      b[3] = clamp_ref(b[3], 0.0f, da.img_h);
    }
    int64_t m = la.out_offset + q;
    for (int j = 0; j < 4; j++) cand_box[4 * m + j] = b[j];
    cand_score[m] = sigmoid_ref(la.cls[a * la.hw + p]);
    cand_src[m] = la.src_offset + i;
    cand_level[m] = la.level;
    float bw = __fsub_rn(b[2], b[0]), bh = __fsub_rn(b[3], b[1]);
    flags[m] = !da.filter || (bw > da.min_size && bh > da.min_size);
    cand_id[m] = (int)m;
  }
}

// ---- step 4: batched NMS ----

// *maxc1 = max coordinate + 1 over the m kept candidates fidx, with batched_nms_cpu's scan
// semantics: maxc starts at the first coordinate and takes each larger one, so NaN is ignored
// unless it is the first coordinate (then it stays NaN). One block.
static __global__ void max_coord_kernel(int64_t m, const int *fidx, const float *cand_box,
                                        float *maxc1) {
  __shared__ float sh[RPN_THREADS];
  float v = -INFINITY;
  for (int64_t e = threadIdx.x; e < 4 * m; e += blockDim.x)
    v = fmaxf(v, cand_box[4 * (int64_t)fidx[e / 4] + e % 4]);
  v = block_max(v, sh);
  if (threadIdx.x == 0) {
    float first = cand_box[4 * (int64_t)fidx[0]];
    *maxc1 = __fadd_rn(isnan(first) ? first : v, 1.0f);
  }
}

// Sort keys of the m candidates (position k in the compacted order), by their scores.
static __global__ void nms_keys_kernel(int64_t m, const int *fidx, const float *cand_score,
                                       unsigned *keys, int *vals) {
  GRID_STRIDE(k, m) {
    keys[k] = desc_key(cand_score[fidx[k]]);
    vals[k] = (int)k;
  }
}

// Sorted, shifted boxes: box + (float)level * (maxc + 1), and their areas as nms_cpu computes
// them (on the shifted boxes).
static __global__ void nms_gather_kernel(int64_t m, const int *ord, const int *fidx,
                                         const float *cand_box, const int *cand_level,
                                         const float *maxc1, float *sbox, float *sarea,
                                         int *slevel) {
  float mc1 = *maxc1;
  GRID_STRIDE(r, m) {
    int64_t c = fidx[ord[r]];
    float off = __fmul_rn((float)cand_level[c], mc1);
    float b[4];
    for (int j = 0; j < 4; j++) b[j] = sbox[4 * r + j] = __fadd_rn(cand_box[4 * c + j], off);
    sarea[r] = __fmul_rn(__fsub_rn(b[2], b[0]), __fsub_rn(b[3], b[1]));
    slevel[r] = cand_level[c];
  }
}

// torchvision's NMS mask: block (column block cbx, row block rby) of 64 x 64; thread t sets bit j
// of mask[(rby * 64 + t) * cb + cbx] when sorted box rby*64+t (earlier) suppresses sorted box
// cbx*64+j (later): IoU > thr, and in split mode only within one level. Blocks below the
// diagonal are skipped (never read).
static __global__ void nms_mask_kernel(int64_t m, int64_t cb, const float *sbox,
                                       const float *sarea, const int *slevel, int split,
                                       float thr, u64 *mask) {
  int64_t rby = blockIdx.y, cbx = blockIdx.x;
  if (rby > cbx) return;
  __shared__ float cbox[NMS_COLS * 4], carea[NMS_COLS];
  __shared__ int clevel[NMS_COLS];
  int64_t rows = m - rby * NMS_COLS < NMS_COLS ? m - rby * NMS_COLS : NMS_COLS;
  int64_t cols = m - cbx * NMS_COLS < NMS_COLS ? m - cbx * NMS_COLS : NMS_COLS;
  int t = threadIdx.x;
  if (t < cols) {
    int64_t j = cbx * NMS_COLS + t;
    for (int e = 0; e < 4; e++) cbox[4 * t + e] = sbox[4 * j + e];
    carea[t] = sarea[j];
    clevel[t] = slevel[j];
  }
  __syncthreads();
  if (t >= rows) return;
  int64_t i = rby * NMS_COLS + t;
  float bi0 = sbox[4 * i], bi1 = sbox[4 * i + 1], bi2 = sbox[4 * i + 2], bi3 = sbox[4 * i + 3];
  float ai = sarea[i];
  int li = slevel[i];
  u64 bits = 0;
  for (int j = rby == cbx ? t + 1 : 0; j < cols; j++) {
    if (split && clevel[j] != li) continue;
    const float *bj = cbox + 4 * j;
    float xx1 = max_ref(bi0, bj[0]), yy1 = max_ref(bi1, bj[1]);
    float xx2 = min_ref(bi2, bj[2]), yy2 = min_ref(bi3, bj[3]);
    float w = max_ref(0.0f, __fsub_rn(xx2, xx1)), h = max_ref(0.0f, __fsub_rn(yy2, yy1));
    float inter = __fmul_rn(w, h);
    float ovr = __fdiv_rn(inter, __fsub_rn(__fadd_rn(ai, carea[j]), inter));
    if (ovr > thr) bits |= 1ull << j;
  }
  mask[i * cb + cbx] = bits;
}

// nms_cpu's visiting loop over the sorted boxes, one block: remv (cb words, shared) marks the
// suppressed boxes. For each 64-box block: thread 0 walks its boxes in order (keeping the
// unsuppressed ones, ORing their in-block words), then all threads OR the kept boxes' words into
// the later blocks. Stops once max_keep (> 0) boxes are kept: later ones cannot change the first
// max_keep. keep receives sorted positions; *nkeep their number.
static __global__ void nms_reduce_kernel(int64_t m, int64_t cb, const u64 *mask, int64_t max_keep,
                                         int *keep, int *nkeep) {
  extern __shared__ u64 remv[];
  __shared__ u64 diag[NMS_COLS];
  __shared__ u64 kept_bits;
  __shared__ int nk, done;
  for (int64_t c = threadIdx.x; c < cb; c += blockDim.x) remv[c] = 0;
  if (threadIdx.x == 0) nk = 0, done = 0;
  __syncthreads();
  for (int64_t nb = 0; nb < cb; nb++) {
    int64_t base = nb * NMS_COLS;
    int rows = m - base < NMS_COLS ? (int)(m - base) : NMS_COLS;
    if (threadIdx.x < rows) diag[threadIdx.x] = mask[(base + threadIdx.x) * cb + nb];
    __syncthreads();
    if (threadIdx.x == 0) {
      u64 r = remv[nb], kb = 0;
      int n = nk;
      for (int k = 0; k < rows; k++) {
        if ((r >> k) & 1ull) continue;
        if (max_keep > 0 && n >= max_keep) break;
        keep[n++] = (int)(base + k);
        kb |= 1ull << k;
        r |= diag[k];
      }
      remv[nb] = r;
      kept_bits = kb;
      nk = n;
      done = max_keep > 0 && n >= max_keep;
    }
    __syncthreads();
    if (done) break;
    u64 kb = kept_bits;
    for (int64_t c = nb + 1 + threadIdx.x; c < cb; c += blockDim.x) {
      u64 acc = remv[c];
      for (u64 bb = kb; bb; bb &= bb - 1) acc |= mask[(base + __ffsll((long long)bb) - 1) * cb + c];
      remv[c] = acc;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *nkeep = nk;
}

// Proposal q = candidate fidx[ord[keep[q]]], q < *nkeep.
static __global__ void output_kernel(int64_t cap, const int *nkeep, const int *keep,
                                     const int *ord, const int *fidx, const float *cand_box,
                                     const float *cand_score, const int64_t *cand_src,
                                     float *out_box, float *out_score, int64_t *out_src) {
  int64_t n = *nkeep;
  GRID_STRIDE(q, cap) {
    if (q >= n) break;
    int64_t c = fidx[ord[keep[q]]];
    for (int j = 0; j < 4; j++) out_box[4 * q + j] = cand_box[4 * c + j];
    out_score[q] = cand_score[c];
    out_src[q] = cand_src[c];
  }
}

// ---- workspace ----

static cuda_workspace g_ws = {NULL, 0, NULL, 0, 0, "RPN proposal workspace"};

extern "C" size_t rpn_cuda_workspace_bytes(void) { return g_ws.bytes; }

// Carves 256-byte aligned pieces out of one buffer (base NULL: only measures).
typedef struct {
  char *base;
  size_t off;
} carver;

static void *carve(carver *cv, size_t bytes) {
  size_t at = (cv->off + 255) / 256 * 256;
  cv->off = at + bytes;
  return cv->base ? cv->base + at : NULL;
}

typedef struct {
  unsigned *keys_in, *keys_out;
  int *vals_in, *vals_out;
  float *cand_box, *cand_score;
  int64_t *cand_src;
  int *cand_level, *cand_id, *fidx, *nsel;
  unsigned char *flags;
  float *maxc1, *sbox, *sarea;
  int *slevel, *keep, *nkeep;
  u64 *mask;
  float *out_box, *out_score;
  int64_t *out_src;
  void *temp;
  size_t temp_bytes;
} rpn_ws;

static size_t layout(carver *cv, rpn_ws *w, int64_t sort_n, int64_t total, int64_t cb,
                     size_t temp_bytes) {
  w->keys_in = (unsigned *)carve(cv, (size_t)sort_n * sizeof(unsigned));
  w->keys_out = (unsigned *)carve(cv, (size_t)sort_n * sizeof(unsigned));
  w->vals_in = (int *)carve(cv, (size_t)sort_n * sizeof(int));
  w->vals_out = (int *)carve(cv, (size_t)sort_n * sizeof(int));
  w->cand_box = (float *)carve(cv, (size_t)total * 4 * sizeof(float));
  w->cand_score = (float *)carve(cv, (size_t)total * sizeof(float));
  w->cand_src = (int64_t *)carve(cv, (size_t)total * sizeof(int64_t));
  w->cand_level = (int *)carve(cv, (size_t)total * sizeof(int));
  w->cand_id = (int *)carve(cv, (size_t)total * sizeof(int));
  w->fidx = (int *)carve(cv, (size_t)total * sizeof(int));
  w->nsel = (int *)carve(cv, sizeof(int));
  w->flags = (unsigned char *)carve(cv, (size_t)total);
  w->maxc1 = (float *)carve(cv, sizeof(float));
  w->sbox = (float *)carve(cv, (size_t)total * 4 * sizeof(float));
  w->sarea = (float *)carve(cv, (size_t)total * sizeof(float));
  w->slevel = (int *)carve(cv, (size_t)total * sizeof(int));
  w->keep = (int *)carve(cv, (size_t)total * sizeof(int));
  w->nkeep = (int *)carve(cv, sizeof(int));
  w->mask = (u64 *)carve(cv, (size_t)total * (size_t)cb * sizeof(u64));
  w->out_box = (float *)carve(cv, (size_t)total * 4 * sizeof(float));
  w->out_score = (float *)carve(cv, (size_t)total * sizeof(float));
  w->out_src = (int64_t *)carve(cv, (size_t)total * sizeof(int64_t));
  w->temp = carve(cv, temp_bytes);
  w->temp_bytes = temp_bytes;
  return cv->off;
}

static void sort_desc(rpn_ws *w, int64_t n, cudaStream_t stream) {
  size_t bytes = 0;
  cudaCheck(cub::DeviceRadixSort::SortPairsDescending(NULL, bytes, w->keys_in, w->keys_out,
                                                      w->vals_in, w->vals_out, (int)n, 0, 32,
                                                      stream));
  masa_assert(bytes <= w->temp_bytes);
  cudaCheck(cub::DeviceRadixSort::SortPairsDescending(w->temp, bytes, w->keys_in, w->keys_out,
                                                      w->vals_in, w->vals_out, (int)n, 0, 32,
                                                      stream));
}

#define LAUNCH(n) blocks_for((n), RPN_THREADS), RPN_THREADS, 0, stream

extern "C" int64_t rpn_proposals_cuda(int num_levels, int num_anchors, const float *const *cls,
                                      const float *const *reg, const int64_t *h, const int64_t *w,
                                      const float *base, const float *strides,
                                      const delta_xywh_coder *coder, int64_t nms_pre,
                                      int64_t max_per_img, float iou_thr, float min_bbox_size,
                                      int64_t split_thr, float img_h, float img_w, float *boxes,
                                      float *scores, int64_t *src, cudaStream_t stream) {
  const int L = num_levels, na = num_anchors;
  masa_assert(L >= 1 && na >= 1 && na <= RPN_MAX_ANCHORS);
  // Sizes: candidates per level after the cut, as rpn_proposals counts them.
  int64_t cnt[16], keep[16], total = 0, sort_max = 0;
  masa_assert(L <= 16);
  for (int l = 0; l < L; l++) {
    cnt[l] = h[l] * w[l] * na;
    masa_assert(cnt[l] < INT32_MAX);
    int cut = nms_pre > 0 && nms_pre < cnt[l];
    keep[l] = cut ? nms_pre : cnt[l];
    if (cut && cnt[l] > sort_max) sort_max = cnt[l];
    total += keep[l];
  }
  if (total == 0) return 0;
  masa_assert(total < INT32_MAX / 4);
  const int64_t sort_n = sort_max > total ? sort_max : total;
  const int64_t cb_max = (total + NMS_COLS - 1) / NMS_COLS;

  // Workspace: CUB's temporary storage for the largest sort and the selection, then the buffers.
  size_t sort_temp = 0, sel_temp = 0;
  cudaCheck(cub::DeviceRadixSort::SortPairsDescending(NULL, sort_temp, (unsigned *)NULL,
                                                      (unsigned *)NULL, (int *)NULL, (int *)NULL,
                                                      (int)sort_n, 0, 32, stream));
  cudaCheck(cub::DeviceSelect::Flagged(NULL, sel_temp, (int *)NULL, (unsigned char *)NULL,
                                       (int *)NULL, (int *)NULL, (int)total, stream));
  size_t temp_bytes = sort_temp > sel_temp ? sort_temp : sel_temp;
  rpn_ws ws;
  carver measure = {NULL, 0};
  size_t need = layout(&measure, &ws, sort_n, total, cb_max, temp_bytes);
  carver cv = {(char *)cuda_workspace_get(&g_ws, need, stream), 0};
  layout(&cv, &ws, sort_n, total, cb_max, temp_bytes);

  decode_args da;
  for (int j = 0; j < 4; j++) da.means[j] = coder->means[j], da.stds[j] = coder->stds[j];
  da.max_ratio = (float)fabs(log(coder->wh_ratio_clip));
  da.clip = coder->clip_border && img_h > 0 && img_w > 0;
  da.img_h = img_h, da.img_w = img_w;
  da.filter = min_bbox_size >= 0.0f;
  da.min_size = min_bbox_size;

  // Steps 1-2 per level.
  int64_t out_offset = 0, src_offset = 0;
  for (int l = 0; l < L; l++) {
    int64_t hw = h[l] * w[l];
    if (cnt[l] == 0) continue;
    const int *order = NULL;
    if (keep[l] < cnt[l]) {
      level_keys_kernel<<<LAUNCH(cnt[l])>>>(cls[l], hw, na, cnt[l], ws.keys_in, ws.vals_in);
      cudaLaunchCheck();
      sort_desc(&ws, cnt[l], stream);
      order = ws.vals_out;
    }
    level_args la;
    la.cls = cls[l], la.reg = reg[l];
    la.w = w[l], la.hw = hw;
    la.na = na, la.level = l;
    la.stride = strides[l];
    la.src_offset = src_offset, la.out_offset = out_offset;
    for (int e = 0; e < 4 * na; e++) la.base[e] = base[(int64_t)l * 4 * na + e];
    level_decode_kernel<<<LAUNCH(keep[l])>>>(la, da, order, keep[l], ws.cand_box, ws.cand_score,
                                             ws.cand_src, ws.cand_level, ws.flags, ws.cand_id);
    cudaLaunchCheck();
    out_offset += keep[l];
    src_offset += cnt[l];
  }

  // Step 3: the size filter, order kept (fidx: surviving candidate slots).
  int64_t m = total;
  const int *fidx = ws.cand_id;
  if (da.filter) {
    size_t bytes = 0;
    cudaCheck(cub::DeviceSelect::Flagged(NULL, bytes, ws.cand_id, ws.flags, ws.fidx, ws.nsel,
                                         (int)total, stream));
    masa_assert(bytes <= ws.temp_bytes);
    cudaCheck(cub::DeviceSelect::Flagged(ws.temp, bytes, ws.cand_id, ws.flags, ws.fidx, ws.nsel,
                                         (int)total, stream));
    int nsel = 0;
    cudaCheck(cudaMemcpyAsync(&nsel, ws.nsel, sizeof nsel, cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
    m = nsel;
    fidx = ws.fidx;
  }
  if (m == 0) return 0;

  // Step 4: batched NMS on the shifted boxes in score order.
  const int64_t cb = (m + NMS_COLS - 1) / NMS_COLS;
  const size_t remv_bytes = (size_t)cb * sizeof(u64);
  if (remv_bytes > 40 * 1024)  // under the 48 KiB default with the static shared arrays
    masa_die(__FILE__, __LINE__, "rpn_proposals_cuda", "CUDA",
             "more than 327680 boxes for one NMS (its suppression state would not fit)");
  max_coord_kernel<<<1, RPN_THREADS, 0, stream>>>(m, fidx, ws.cand_box, ws.maxc1);
  cudaLaunchCheck();
  nms_keys_kernel<<<LAUNCH(m)>>>(m, fidx, ws.cand_score, ws.keys_in, ws.vals_in);
  cudaLaunchCheck();
  sort_desc(&ws, m, stream);
  const int *ord = ws.vals_out;
  nms_gather_kernel<<<LAUNCH(m)>>>(m, ord, fidx, ws.cand_box, ws.cand_level, ws.maxc1, ws.sbox,
                                   ws.sarea, ws.slevel);
  cudaLaunchCheck();
  const int split = !(m < split_thr);
  nms_mask_kernel<<<dim3((unsigned)cb, (unsigned)cb), NMS_COLS, 0, stream>>>(
      m, cb, ws.sbox, ws.sarea, ws.slevel, split, iou_thr, ws.mask);
  cudaLaunchCheck();
  nms_reduce_kernel<<<1, RPN_THREADS, remv_bytes, stream>>>(m, cb, ws.mask, max_per_img, ws.keep,
                                                            ws.nkeep);
  cudaLaunchCheck();

  // Step 5: the survivors to the host.
  const int64_t cap = max_per_img > 0 && max_per_img < m ? max_per_img : m;
  output_kernel<<<LAUNCH(cap)>>>(cap, ws.nkeep, ws.keep, ord, fidx, ws.cand_box, ws.cand_score,
                                 ws.cand_src, ws.out_box, ws.out_score, ws.out_src);
  cudaLaunchCheck();
  int nk = 0;
  cudaCheck(cudaMemcpyAsync(&nk, ws.nkeep, sizeof nk, cudaMemcpyDeviceToHost, stream));
  cudaCheck(cudaStreamSynchronize(stream));
  if (nk > 0) {
    cudaCheck(cudaMemcpyAsync(boxes, ws.out_box, (size_t)nk * 4 * sizeof(float),
                              cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaMemcpyAsync(scores, ws.out_score, (size_t)nk * sizeof(float),
                              cudaMemcpyDeviceToHost, stream));
    if (src)
      cudaCheck(cudaMemcpyAsync(src, ws.out_src, (size_t)nk * sizeof(int64_t),
                                cudaMemcpyDeviceToHost, stream));
    cudaCheck(cudaStreamSynchronize(stream));
  }
  return nk;
}
