// `masa check`, second group of ops: RoIAlign (single and multi-level), modulated deformable conv,
// conv2d. Each CUDA twin runs forward and backward on random inputs with awkward shapes (batch 1
// and 3, non-square maps and kernels, RoIs partly outside the image and of zero size, large
// offsets, stride 2, dilation 2, groups, mmcv's offset reinterpretation strides) and is compared
// with its CPU twin. Gradient buffers start from random values on both sides (backward
// accumulates); every device output is followed by guard sentinels. DCN's backward also runs
// twice in deterministic mode (cuda_set_deterministic(1)), whose gradients must agree bit for bit.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "ops/ops.h"

#ifdef MASA_HAVE_CUDA
#include "kernels.h"

// Copies back a guarded device buffer and compares it; frees the host copy.
static void cmp_dev(check_state *st, const char *name, const float *dev, const float *ref, int64_t n,
                    double atol, double rtol) {
  float *h = gpu_check_host_copy(dev, n);
  gpu_check_compare(st, name, h, ref, n, atol, rtol);
  free(h);
}

// Row: device buffers a and b (n floats + guard each) bitwise identical, guards intact.
static void same_bits(check_state *st, const char *name, const float *a, const float *b,
                      int64_t n) {
  float *ha = gpu_check_host_copy(a, n), *hb = gpu_check_host_copy(b, n);
  int64_t differ = 0;
  double max_abs = 0;
  for (int64_t i = 0; i < n; i++) {
    if (memcmp(ha + i, hb + i, sizeof(float)) == 0) continue;
    differ++;
    double e = fabs((double)ha[i] - (double)hb[i]);
    if (e > max_abs || e != e) max_abs = e;
  }
  int guard_ok = 1;
  for (int64_t i = n; i < n + GUARD; i++)
    if (ha[i] != SENTINEL || hb[i] != SENTINEL) guard_ok = 0;
  st->total++;
  if (differ || !guard_ok) st->failures++;
  printf("%-40s %10lld %11.3g %11lld %21s %s%s\n", name, (long long)n, max_abs, (long long)differ,
         "bitwise, 2 runs", !differ && guard_ok ? "pass" : "FAIL",
         guard_ok ? "" : " (guard overwritten)");
  free(ha), free(hb);
}

static float *host_copy_of(const float *src, int64_t n) {
  float *p = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(float));
  if (n > 0) memcpy(p, src, (size_t)n * sizeof(float));
  return p;
}

// k RoIs over an image of img_h x img_w pixels: about a third partly outside the image, one of
// zero size (x1 == x2, y1 == y2), the rest inside; sizes from a few pixels to the whole image.
static float *make_rois(int64_t k, int64_t n, float img_h, float img_w, uint64_t seed, uint64_t s) {
  float *u = gpu_check_random(5 * k, seed, s);
  float *r = mallocCheck((size_t)(5 * k + 1) * sizeof(float));
  for (int64_t i = 0; i < k; i++) {
    const float *q = u + 5 * i;
    float cx = (0.5f + 0.6f * q[1]) * img_w, cy = (0.5f + 0.6f * q[2]) * img_h;  // may be outside
    float bw = (0.02f + 0.5f * (q[3] + 1.0f)) * img_w, bh = (0.02f + 0.5f * (q[4] + 1.0f)) * img_h;
    if (i % 3 == 0) bw *= 0.1f, bh *= 0.1f;
    if (i == 1) bw = bh = 0.0f;  // zero-size RoI
    r[5 * i] = (float)((int64_t)((q[0] + 1.0f) * 0.5f * (float)n) % n);
    r[5 * i + 1] = cx - 0.5f * bw, r[5 * i + 2] = cy - 0.5f * bh;
    r[5 * i + 3] = cx + 0.5f * bw, r[5 * i + 4] = cy + 0.5f * bh;
  }
  free(u);
  return r;
}

// Tolerances (RoIAlign): outputs are averages of bilinear samples of values in [-1, 1); CPU sums
// separable taps, GPU per sample: float32 reassociation ~1e-7, allow 1e-5 + 1e-5|ref|. Input
// gradients add up to k RoIs' contributions on top of a random start: 1e-5 + 1e-4|ref|.
static void check_roi_align(check_state *st, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                            float scale, int64_t oh, int64_t ow, int sr, int aligned, int atomic,
                            uint64_t seed) {
  const int64_t nx = n * c * h * w, ny = k * c * oh * ow;
  float *x = gpu_check_random(nx, seed, 100), *dy = gpu_check_random(ny, seed, 101);
  float *dx0 = gpu_check_random(nx, seed, 102);
  float *rois = make_rois(k, n, (float)h / scale, (float)w / scale, seed, 103);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float)), *dx = host_copy_of(dx0, nx);
  roi_align_forward_cpu(n, c, h, w, x, k, rois, scale, oh, ow, sr, aligned, y);
  roi_align_backward_cpu(n, c, h, w, k, rois, scale, oh, ow, sr, aligned, dy, dx);
  float *dX = gpu_check_dev_guarded(x, nx), *dR = gpu_check_dev_guarded(rois, 5 * k);
  float *dY = gpu_check_dev_guarded(NULL, ny), *ddY = gpu_check_dev_guarded(dy, ny);
  float *ddX = gpu_check_dev_guarded(dx0, nx);
  roi_align_cuda_set_atomic(atomic);
  roi_align_forward_cuda(n, c, h, w, dX, k, dR, scale, oh, ow, sr, aligned, dY, 0);
  roi_align_backward_cuda(n, c, h, w, k, dR, scale, oh, ow, sr, aligned, ddY, ddX, 0);
  roi_align_cuda_set_atomic(0);
  char name[96];
  snprintf(name, sizeof name, "roi_align fwd n%lld %lldx%lld k%lld sr%d al%d", (long long)n,
           (long long)h, (long long)w, (long long)k, sr, aligned);
  cmp_dev(st, name, dY, y, ny, 1e-5, 1e-5);
  snprintf(name, sizeof name, "roi_align bwd n%lld %lldx%lld k%lld sr%d %s", (long long)n,
           (long long)h, (long long)w, (long long)k, sr, atomic ? "atomic" : "gather");
  cmp_dev(st, name, ddX, dx, nx, 1e-5, 1e-4);
  cuda_free(dX), cuda_free(dR), cuda_free(dY), cuda_free(ddY), cuda_free(ddX);
  free(x), free(dy), free(dx0), free(rois), free(y), free(dx);
}

// Three levels (strides 4, 8, 16), odd sizes; level 1's gradient pointer is NULL to check that it
// is skipped. RoI sizes span all levels (finest_scale 8 on a 120 x 88 image).
static void check_roi_align_ml(check_state *st, int64_t n, int64_t k, int atomic, uint64_t seed) {
  roi_align_ml_desc d = {.num_levels = 3, .n = n, .c = 5, .finest_scale = 8.0f, .out_h = 7,
                         .out_w = 5, .sampling_ratio = 0, .aligned = 1};
  const float img_h = 120.0f, img_w = 88.0f;
  int64_t nf[3];
  float *f[3], *df0[3], *df[3], *dF[3], *ddF[3];
  for (int l = 0; l < 3; l++) {
    d.strides[l] = (float)(4 << l);
    d.hs[l] = (int64_t)ceilf(img_h / d.strides[l]), d.ws[l] = (int64_t)ceilf(img_w / d.strides[l]);
    nf[l] = n * d.c * d.hs[l] * d.ws[l];
    f[l] = gpu_check_random(nf[l], seed, 110 + l), df0[l] = gpu_check_random(nf[l], seed, 120 + l);
    df[l] = host_copy_of(df0[l], nf[l]);
    dF[l] = gpu_check_dev_guarded(f[l], nf[l]);
    ddF[l] = gpu_check_dev_guarded(df0[l], nf[l]);
  }
  const int64_t ny = k * d.c * d.out_h * d.out_w;
  float *rois = make_rois(k, n, img_h, img_w, seed, 130), *dy = gpu_check_random(ny, seed, 131);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  int *lv = mallocCheck((size_t)(k + 1) * sizeof(int));
  roi_align_multilevel_forward_cpu(&d, (const float *const *)f, k, rois, y, lv);
  float *dfc[3] = {df[0], NULL, df[2]};
  roi_align_multilevel_backward_cpu(&d, k, rois, dy, dfc);
  float *dR = gpu_check_dev_guarded(rois, 5 * k), *dY = gpu_check_dev_guarded(NULL, ny);
  float *ddY = gpu_check_dev_guarded(dy, ny), *dLv = gpu_check_dev_guarded(NULL, k);
  roi_align_cuda_set_atomic(atomic);
  roi_align_multilevel_forward_cuda(&d, (const float *const *)dF, k, dR, dY, (int *)dLv, 0);
  float *ddFc[3] = {ddF[0], NULL, ddF[2]};
  roi_align_multilevel_backward_cuda(&d, k, dR, ddY, ddFc, 0);
  roi_align_cuda_set_atomic(0);
  char name[96];
  snprintf(name, sizeof name, "roi_align_ml fwd n%lld k%lld", (long long)n, (long long)k);
  cmp_dev(st, name, dY, y, ny, 1e-5, 1e-5);
  // Levels: ints written into a float-sized guarded buffer; compared exactly as floats.
  float *hl = gpu_check_host_copy(dLv, k), *ref = mallocCheck((size_t)(k + 1) * sizeof(float));
  for (int64_t r = 0; r < k; r++) {
    int v;
    memcpy(&v, hl + r, sizeof v);
    hl[r] = (float)v, ref[r] = (float)lv[r];
  }
  snprintf(name, sizeof name, "roi_align_ml levels n%lld k%lld", (long long)n, (long long)k);
  gpu_check_compare(st, name, hl, ref, k, 0, 0);
  free(hl), free(ref);
  for (int l = 0; l < 3; l++) {
    snprintf(name, sizeof name, "roi_align_ml bwd level %d%s %s", l, l == 1 ? " (NULL)" : "",
             atomic ? "atomic" : "gather");
    cmp_dev(st, name, ddF[l], df[l], nf[l], 1e-5, 1e-4);  // level 1: untouched start values
    cuda_free(dF[l]), cuda_free(ddF[l]);
    free(f[l]), free(df0[l]), free(df[l]);
  }
  cuda_free(dR), cuda_free(dY), cuda_free(ddY), cuda_free(dLv);
  free(rois), free(dy), free(y), free(lv);
}

// DCN. reinterpret: offsets and masks live in one (n, 27, hl, wl) buffer (hl*wl >= ho*wo, a
// different shape) read with the output's strides, as mmcv's offset reinterpretation; otherwise
// contiguous (n, 18, ho, wo) / (n, 9, ho, wo). Offsets are scaled by off_scale (large: many samples
// leave the image). The backward runs once with atomics (device.deterministic false) and twice in
// deterministic mode; the two deterministic runs must agree bit for bit in every gradient.
// Tolerances: y and dweight are K- or (n*ho*wo)-term FP32 dot products of values ~1 in another
// order: 1e-5 + 1e-4|ref|; dx (either path) sums dcol terms in another order: same; doffset /
// dmask sum c_in * c_out terms of differences of inputs: 5e-5 + 1e-4|ref|; dbias is summed in
// double on both sides: 1e-5. The absolute parts grow with sqrt(c_in * c_out) / 16 once that
// exceeds 1 (MASA's 256 channels: x16): dcol and the sums over channels grow like the square root
// of their term counts, and so does their rounding where the result cancels to near 0 (a lost
// or misplaced term is of order 1, still far outside).
static void check_dcn(check_state *st, int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                      int64_t stride, int64_t pad, int64_t dil, int bias, int reinterpret,
                      float off_scale, uint64_t seed) {
  dcn_desc d = dcn_make(n, c_in, h, w, c_out, 3, stride, pad, dil);
  const int64_t hw = d.ho * d.wo, taps = 9;
  int64_t hl = d.ho, wl = d.wo, nbuf;
  float *offb, *mskb;  // host offset / mask storage
  int64_t moff;        // mask offset inside the combined buffer
  if (reinterpret) {
    hl = d.ho - 1, wl = d.wo + 3;  // another shape with hl*wl >= ho*wo (asserted)
    masa_assert(hl * wl >= hw);
    nbuf = n * 27 * hl * wl;
    d.off = (dcn_strides){.batch = 27 * hl * wl, .channel = hw, .row = d.wo};
    d.msk = (dcn_strides){.batch = 27 * hl * wl, .channel = hw, .row = d.wo};
    moff = 18 * hl * wl;
  } else {
    nbuf = n * 27 * hw;  // offsets (n, 18, ho, wo) then masks (n, 9, ho, wo)
    moff = n * 18 * hw;
  }
  offb = gpu_check_random(nbuf, seed, 200);
  float *m01 = gpu_check_random(nbuf, seed, 201);
  for (int64_t i = 0; i < nbuf; i++) offb[i] *= off_scale;
  mskb = offb;  // one buffer: mask region overwritten with values in [0, 1)
  for (int64_t i = 0; i < nbuf; i++) {
    int in_mask = reinterpret ? (i % (27 * hl * wl)) >= moff : i >= moff;
    if (in_mask) mskb[i] = 0.5f * (m01[i] + 1.0f);
  }
  free(m01);
  const int64_t nx = n * c_in * h * w, nw = c_out * c_in * taps, ny = n * c_out * hw;
  float *x = gpu_check_random(nx, seed, 202), *wt = gpu_check_random(nw, seed, 203);
  float *b = gpu_check_random(c_out, seed, 204), *dy = gpu_check_random(ny, seed, 205);
  float *dx0 = gpu_check_random(nx, seed, 206), *dw0 = gpu_check_random(nw, seed, 207);
  float *db0 = gpu_check_random(c_out, seed, 208), *dbuf0 = gpu_check_random(nbuf, seed, 209);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  float *dx = host_copy_of(dx0, nx), *dw = host_copy_of(dw0, nw), *db = host_copy_of(db0, c_out);
  float *dbuf = host_copy_of(dbuf0, nbuf);
  // Contiguous: mask at moff with batch stride 9*hw (dcn_make); reinterpreted: batch 27*hl*wl.
  const float *moffp = offb + moff;
  dcn_forward_cpu(&d, x, offb, moffp, wt, bias ? b : NULL, y);
  dcn_backward_cpu(&d, x, offb, moffp, wt, dy, dx, dbuf, dbuf + moff, dw, bias ? db : NULL);
  float *dX = gpu_check_dev_guarded(x, nx), *dO = gpu_check_dev_guarded(offb, nbuf);
  float *dW = gpu_check_dev_guarded(wt, nw), *dB = gpu_check_dev_guarded(b, c_out);
  float *dY = gpu_check_dev_guarded(NULL, ny), *ddY = gpu_check_dev_guarded(dy, ny);
  float *ddX = gpu_check_dev_guarded(dx0, nx), *ddW = gpu_check_dev_guarded(dw0, nw);
  float *ddB = gpu_check_dev_guarded(db0, c_out), *ddO = gpu_check_dev_guarded(dbuf0, nbuf);
  dcn_forward_cuda(&d, dX, dO, dO + moff, dW, bias ? dB : NULL, dY, 0);
  const int saved = cuda_deterministic();
  cuda_set_deterministic(0);
  dcn_backward_cuda(&d, dX, dO, dO + moff, dW, ddY, ddX, ddO, ddO + moff, ddW, bias ? ddB : NULL, 0);
  // Deterministic mode, twice from the same start.
  float *rX[2], *rO[2], *rW[2], *rB[2];
  cuda_set_deterministic(1);
  for (int r = 0; r < 2; r++) {
    rX[r] = gpu_check_dev_guarded(dx0, nx), rO[r] = gpu_check_dev_guarded(dbuf0, nbuf);
    rW[r] = gpu_check_dev_guarded(dw0, nw), rB[r] = gpu_check_dev_guarded(db0, c_out);
    dcn_backward_cuda(&d, dX, dO, dO + moff, dW, ddY, rX[r], rO[r], rO[r] + moff, rW[r],
                      bias ? rB[r] : NULL, 0);
  }
  cuda_set_deterministic(saved);
  const double ts = fmax(1.0, sqrt((double)(c_in * c_out)) / 16.0);  // see the tolerances above
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "n%lld %lldx%lld s%lld d%lld%s", (long long)n, (long long)h, (long long)w,
           (long long)stride, (long long)dil, reinterpret ? " reint" : "");
  snprintf(name, sizeof name, "dcn fwd %s", tag);
  cmp_dev(st, name, dY, y, ny, ts * 1e-5, 1e-4);
  snprintf(name, sizeof name, "dcn bwd dx (atomic) %s", tag);
  cmp_dev(st, name, ddX, dx, nx, ts * 1e-5, 1e-4);
  snprintf(name, sizeof name, "dcn bwd doffset+dmask %s", tag);
  cmp_dev(st, name, ddO, dbuf, nbuf, ts * 5e-5, 1e-4);
  snprintf(name, sizeof name, "dcn bwd dweight %s", tag);
  cmp_dev(st, name, ddW, dw, nw, ts * 1e-5, 1e-4);
  if (bias) {
    snprintf(name, sizeof name, "dcn bwd dbias %s", tag);
    cmp_dev(st, name, ddB, db, c_out, 1e-5, 1e-6);
  }
  snprintf(name, sizeof name, "dcn bwd dx (det) %s", tag);
  cmp_dev(st, name, rX[0], dx, nx, ts * 1e-5, 1e-4);
  snprintf(name, sizeof name, "dcn bwd doffset+dmask (det) %s", tag);
  cmp_dev(st, name, rO[0], dbuf, nbuf, ts * 5e-5, 1e-4);
  snprintf(name, sizeof name, "dcn det repeat dx %s", tag);
  same_bits(st, name, rX[0], rX[1], nx);
  snprintf(name, sizeof name, "dcn det repeat doffset+dmask %s", tag);
  same_bits(st, name, rO[0], rO[1], nbuf);
  snprintf(name, sizeof name, "dcn det repeat dweight %s", tag);
  same_bits(st, name, rW[0], rW[1], nw);
  if (bias) {
    snprintf(name, sizeof name, "dcn det repeat dbias %s", tag);
    same_bits(st, name, rB[0], rB[1], c_out);
  }
  for (int r = 0; r < 2; r++) {
    cuda_free(rX[r]), cuda_free(rO[r]), cuda_free(rW[r]), cuda_free(rB[r]);
  }
  cuda_free(dX), cuda_free(dO), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(ddY);
  cuda_free(ddX), cuda_free(ddW), cuda_free(ddB), cuda_free(ddO);
  free(offb), free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(db0), free(dbuf0);
  free(y), free(dx), free(dw), free(db), free(dbuf);
}

// conv2d. Tolerances: FP32 dot products of K = c_in/g*kh*kw (forward, dx) or n*ho*wo (dw) terms
// of values ~1 in another order: 1e-5 + 1e-4|ref|; dbias in double on both sides: 1e-5.
static void check_conv(check_state *st, conv2d_desc d, int bias, uint64_t seed) {
  const int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  const int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * (d.c_in / d.groups) * d.kh * d.kw;
  const int64_t ny = d.n * d.c_out * ho * wo;
  float *x = gpu_check_random(nx, seed, 300), *wt = gpu_check_random(nw, seed, 301);
  float *b = gpu_check_random(d.c_out, seed, 302), *dy = gpu_check_random(ny, seed, 303);
  float *dx0 = gpu_check_random(nx, seed, 304), *dw0 = gpu_check_random(nw, seed, 305);
  float *db0 = gpu_check_random(d.c_out, seed, 306);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  float *dx = host_copy_of(dx0, nx), *dw = host_copy_of(dw0, nw), *db = host_copy_of(db0, d.c_out);
  conv2d_forward_cpu(&d, x, wt, bias ? b : NULL, y);
  conv2d_backward_cpu(&d, x, wt, dy, dx, dw, bias ? db : NULL);
  float *dX = gpu_check_dev_guarded(x, nx), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(b, d.c_out), *dY = gpu_check_dev_guarded(NULL, ny);
  float *ddY = gpu_check_dev_guarded(dy, ny), *ddX = gpu_check_dev_guarded(dx0, nx);
  float *ddW = gpu_check_dev_guarded(dw0, nw), *ddB = gpu_check_dev_guarded(db0, d.c_out);
  int backend = cuda_conv_backend();  // these rows test the im2col + cuBLAS path
  cuda_set_conv_backend(0);
  conv2d_forward_cuda(&d, dX, dW, bias ? dB : NULL, dY, 0);
  conv2d_backward_cuda(&d, dX, dW, ddY, ddX, ddW, bias ? ddB : NULL, 0);
  cuda_set_conv_backend(backend);
  char tag[80], name[96];
  snprintf(tag, sizeof tag, "n%lld %lldx%lld k%lldx%lld s%lld,%lld d%lld g%lld", (long long)d.n,
           (long long)d.h, (long long)d.w, (long long)d.kh, (long long)d.kw, (long long)d.stride_h,
           (long long)d.stride_w, (long long)d.dil_h, (long long)d.groups);
  snprintf(name, sizeof name, "conv2d fwd %s", tag);
  cmp_dev(st, name, dY, y, ny, 1e-5, 1e-4);
  snprintf(name, sizeof name, "conv2d bwd dx %s", tag);
  cmp_dev(st, name, ddX, dx, nx, 1e-5, 1e-4);
  snprintf(name, sizeof name, "conv2d bwd dw %s", tag);
  cmp_dev(st, name, ddW, dw, nw, 1e-5, 1e-4);
  if (bias) {
    snprintf(name, sizeof name, "conv2d bwd db %s", tag);
    cmp_dev(st, name, ddB, db, d.c_out, 1e-5, 1e-6);
  }
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(ddY), cuda_free(ddX);
  cuda_free(ddW), cuda_free(ddB);
  free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(db0), free(y), free(dx), free(dw);
  free(db);
}

void gpu_check_ops2(check_state *st, uint64_t seed) {
  // RoIAlign: batch 1 and 3, non-square maps, aligned and not, fixed and adaptive grids, both
  // backward paths, zero RoIs.
  check_roi_align(st, 1, 3, 13, 21, 9, 0.25f, 7, 7, 2, 1, 0, seed);
  check_roi_align(st, 3, 4, 17, 11, 40, 0.125f, 7, 5, 0, 1, 0, seed);
  check_roi_align(st, 3, 4, 17, 11, 40, 0.125f, 7, 5, 0, 1, 1, seed);
  check_roi_align(st, 2, 2, 40, 70, 300, 0.25f, 14, 14, 0, 0, 0, seed);
  check_roi_align(st, 2, 2, 9, 33, 25, 1.0f, 3, 4, 1, 0, 1, seed);
  check_roi_align(st, 3, 2, 9, 8, 0, 0.5f, 7, 7, 2, 1, 0, seed);  // zero RoIs: nothing changes
  check_roi_align_ml(st, 1, 30, 0, seed);
  check_roi_align_ml(st, 3, 60, 0, seed);
  check_roi_align_ml(st, 3, 60, 1, seed);
  // DCN: stride 2, dilation 2, large offsets, mmcv offset reinterpretation strides.
  check_dcn(st, 1, 5, 9, 11, 4, 1, 1, 1, 0, 0, 1.5f, seed);
  check_dcn(st, 3, 3, 8, 13, 6, 2, 1, 1, 1, 0, 6.0f, seed);
  check_dcn(st, 3, 4, 10, 7, 5, 1, 2, 2, 1, 0, 3.0f, seed);
  check_dcn(st, 2, 6, 12, 10, 8, 1, 1, 1, 0, 1, 2.0f, seed);
  check_dcn(st, 1, 17, 7, 9, 3, 2, 1, 1, 1, 1, 8.0f, seed);
  check_dcn(st, 3, 2, 1, 1, 2, 1, 1, 1, 1, 0, 0.7f, seed);     // 1x1 map
  check_dcn(st, 1, 2, 250, 243, 3, 1, 1, 1, 0, 0, 3.0f, seed); // two deterministic dx chunks
  check_dcn(st, 1, 1024, 47, 49, 8, 1, 1, 1, 0, 0, 2.0f, seed); // two column tiles
  // MASA's DyHead shapes: 256 channels, stride 1 (offset reinterpretation) and 2.
  check_dcn(st, 2, 256, 64, 64, 256, 1, 1, 1, 0, 1, 2.0f, seed);
  check_dcn(st, 1, 256, 64, 64, 256, 2, 1, 1, 0, 0, 4.0f, seed);
  // conv2d: groups, stride, dilation, non-square kernels and strides, 1x1 direct path.
  check_conv(st, conv2d_make(1, 3, 7, 9, 5, 3, 1, 1, 1, 1), 1, seed);
  check_conv(st, conv2d_make(3, 4, 10, 7, 6, 3, 2, 1, 1, 1), 0, seed);
  check_conv(st, conv2d_make(2, 6, 9, 8, 4, 3, 2, 2, 2, 2), 1, seed);
  check_conv(st, conv2d_make(3, 8, 5, 7, 6, 1, 1, 0, 1, 1), 1, seed);
  check_conv(st, conv2d_make(2, 8, 6, 9, 12, 1, 2, 0, 1, 4), 1, seed);
  conv2d_desc nsq = conv2d_make(3, 5, 11, 6, 7, 3, 1, 1, 1, 1);
  nsq.kw = 1, nsq.pad_w = 0, nsq.stride_w = 2, nsq.dil_h = 2, nsq.pad_h = 2;
  check_conv(st, nsq, 1, seed);
  check_conv(st, conv2d_make(1, 64, 40, 48, 96, 3, 1, 1, 1, 1), 1, seed);  // K = 576
}
#endif
