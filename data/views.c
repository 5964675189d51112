// Two-view pairs (see views.h): parameter draws, the composed geometry of each view, boxes,
// ids and id maps, decoding at the coarsest allowed DCT scale, and rendering.
#include "data/views.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/boxes.h"
#include "data/idmap.h"
#include "data/warp.h"

void views_opts_default(views_opts *o) {
  memset(o, 0, sizeof *o);
  o->size = 1024;
  o->pad_value = 114;
  o->affine = 1;
  o->max_rotate_deg = 10;
  o->scale_min = 0.5, o->scale_max = 1.5;
  o->max_shear_deg = 2;
  o->max_translate = 0.1;
  o->mixup = 1;
  o->mix_ratio_min = 0.8, o->mix_ratio_max = 1.6;
  o->mix_flip_prob = 0.5;
  o->hsv = 1;
  o->hsv_delta[0] = 5, o->hsv_delta[1] = 30, o->hsv_delta[2] = 30;
  o->hsv_prob = 0.5;
  o->resize_min = 0.1, o->resize_max = 2.0;
  o->flip_prob = 0.5;
  o->min_box_wh = 1;
  o->boxes = BOX_EXACT;
  o->max_retries = 15;
  o->jpeg_dct = 1;
  o->id_map_stride = 0;
  o->keep_u8 = 0;
  const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
  memcpy(o->mean, mean, sizeof mean);
  memcpy(o->std, std, sizeof std);
}

void view_pair_free(view_pair *p) {
  for (int k = 0; k < 2; k++) {
    free(p->v[k].boxes);
    free(p->v[k].ids);
    free(p->v[k].id_map);
    free(p->v[k].px);
    p->v[k].boxes = NULL, p->v[k].ids = NULL, p->v[k].id_map = NULL, p->v[k].px = NULL;
    p->v[k].n = 0;
  }
}

// ---- parameters and geometry

static double uniform(uint64_t seed, uint64_t stream, uint64_t k, double lo, double hi) {
  return lo + (hi - lo) * (double)rng_uniform(seed, stream, k);
}

// RandomResize: long side int(S*r), keep ratio with mmcv's int(x * f + 0.5) sizes.
static void resized_size(int S, double r, int h, int w, int *nh, int *nw) {
  int target = (int)(S * r);
  if (target < 1) target = 1;
  double f = (double)target / (double)(h > w ? h : w);
  *nw = (int)(w * f + 0.5), *nh = (int)(h * f + 0.5);
  if (*nw < 1) *nw = 1;
  if (*nh < 1) *nh = 1;
}

// SeqMixUp's canvas: the mixup image fitted into S x S (int sizes), the canvas scaled to
// int(S * jitter).
static void mix_canvas(int S, double jitter, int mh, int mw, int *ph, int *pw, int *cj) {
  double s0 = fmin((double)S / mh, (double)S / mw);
  *pw = (int)(mw * s0), *ph = (int)(mh * s0);
  *cj = (int)(S * jitter);
  if (*cj < 1) *cj = 1;
}

void view_params_draw(const views_opts *o, int src_h, int src_w, int mix_h, int mix_w,
                      uint64_t seed, uint64_t stream, uint64_t k, view_params *p) {
  memset(p, 0, sizeof *p);
  int S = o->size;
  p->scale = 1;
  if (o->affine) {
    p->rotate_deg = uniform(seed, stream, k + 0, -o->max_rotate_deg, o->max_rotate_deg);
    p->scale = uniform(seed, stream, k + 1, o->scale_min, o->scale_max);
    p->shear_x_deg = uniform(seed, stream, k + 2, -o->max_shear_deg, o->max_shear_deg);
    p->shear_y_deg = uniform(seed, stream, k + 3, -o->max_shear_deg, o->max_shear_deg);
    p->translate_x = uniform(seed, stream, k + 4, -o->max_translate, o->max_translate) * src_w;
    p->translate_y = uniform(seed, stream, k + 5, -o->max_translate, o->max_translate) * src_h;
  }
  if (mix_h > 0) {
    p->mix_jitter = uniform(seed, stream, k + 6, o->mix_ratio_min, o->mix_ratio_max);
    p->mix_flip = rng_uniform(seed, stream, k + 7) < o->mix_flip_prob;
    int ph, pw, cj;
    mix_canvas(S, p->mix_jitter, mix_h, mix_w, &ph, &pw, &cj);
    int padded_h = cj > src_h ? cj : src_h, padded_w = cj > src_w ? cj : src_w;
    // numpy randint(0, n): n excluded.
    p->mix_off_y = padded_h > src_h ? (int)rng_below(seed, stream, k + 8, (uint32_t)(padded_h - src_h)) : 0;
    p->mix_off_x = padded_w > src_w ? (int)rng_below(seed, stream, k + 9, (uint32_t)(padded_w - src_w)) : 0;
  }
  if (o->hsv) {
    for (int c = 0; c < 3; c++) {
      double g = uniform(seed, stream, k + 10 + c, -1, 1) * o->hsv_delta[c];
      int on = rng_uniform(seed, stream, k + 13 + c) < o->hsv_prob;
      p->hsv_gain[c] = on ? (int)g : 0;  // int16 cast: truncation toward zero
    }
  }
  p->resize_ratio = uniform(seed, stream, k + 16, o->resize_min, o->resize_max);
  int nh, nw;
  resized_size(S, p->resize_ratio, src_h, src_w, &nh, &nw);
  int ch = nh < S ? nh : S, cw = nw < S ? nw : S;
  p->crop_y = (int)rng_below(seed, stream, k + 17, (uint32_t)(nh - ch + 1));
  p->crop_x = (int)rng_below(seed, stream, k + 18, (uint32_t)(nw - cw + 1));
  p->flip = rng_uniform(seed, stream, k + 19) < o->flip_prob;
}

// The separate steps, kept for the official box arithmetic (corners mode).
typedef struct {
  affine2d affine;     // source -> affine frame (source size)
  affine2d mix;        // mixup image -> affine frame
  affine2d mix_box;    // the same for boxes: mmdet scales them by the float ratio, not int sizes
  affine2d post;       // affine frame -> view (resize, crop, flip)
  int cw, ch;
} geometry;

static void geometry_of(const views_opts *o, const view_params *p, int h, int w, int mh, int mw,
                        geometry *g) {
  int S = o->size;
  const double rad = M_PI / 180.0;
  double cr = cos(p->rotate_deg * rad), sr = sin(p->rotate_deg * rad);
  affine2d R = {cr, -sr, 0, sr, cr, 0};
  affine2d Sh = {1, tan(p->shear_x_deg * rad), 0, tan(p->shear_y_deg * rad), 1, 0};
  g->affine = affine_mul(affine_translate(p->translate_x, p->translate_y),
                         affine_mul(Sh, affine_mul(R, affine_scale(p->scale, p->scale))));
  g->mix = g->mix_box = affine_identity();
  if (mh > 0) {
    int ph, pw, cj;
    mix_canvas(S, p->mix_jitter, mh, mw, &ph, &pw, &cj);
    double ratio = fmin((double)S / mh, (double)S / mw) * p->mix_jitter;
    affine2d m = affine_scale((double)pw / mw * cj / S, (double)ph / mh * cj / S);
    affine2d mb = affine_scale(ratio, ratio);
    if (p->mix_flip) {
      m = affine_mul((affine2d){-1, 0, cj, 0, 1, 0}, m);
      mb = affine_mul((affine2d){-1, 0, cj, 0, 1, 0}, mb);
    }
    g->mix = affine_mul(affine_translate(-p->mix_off_x, -p->mix_off_y), m);
    g->mix_box = affine_mul(affine_translate(-p->mix_off_x, -p->mix_off_y), mb);
  }
  int nh, nw;
  resized_size(S, p->resize_ratio, h, w, &nh, &nw);
  g->ch = nh < S ? nh : S, g->cw = nw < S ? nw : S;
  affine2d post = affine_mul(affine_translate(-p->crop_x, -p->crop_y),
                             affine_scale((double)nw / w, (double)nh / h));
  if (p->flip) post = affine_mul((affine2d){-1, 0, g->cw, 0, 1, 0}, post);
  g->post = post;
}

void view_geometry(const views_opts *o, const view_params *p, int src_h, int src_w, int mix_h,
                   int mix_w, view *v) {
  geometry g;
  geometry_of(o, p, src_h, src_w, mix_h, mix_w, &g);
  v->params = *p;
  v->src_to_view = affine_mul(g.post, g.affine);
  v->mix_to_view = affine_mul(g.post, g.mix);
  v->content_w = g.cw, v->content_h = g.ch;
}

// ---- instances

typedef struct {
  int64_t id;          // | VIEWS_MIX_ID for the mixup image
  double box[4];       // x1, y1, x2, y2 from the file
  int has_mask;
  mask_rects rects;
  int64_t area;
} instance;

typedef struct {
  int h, w;
  int n;
  instance *inst;
  int64_t *ids;        // (n) copy of inst[i].id, for id maps
  label_image labels;  // when id maps are requested
} source_instances;

static void source_free(source_instances *s) {
  for (int i = 0; i < s->n; i++) mask_rects_free(&s->inst[i].rects);
  free(s->inst);
  free(s->ids);
  label_image_free(&s->labels);
  memset(s, 0, sizeof *s);
}

// The annotations a view can use: MASADataset.parse_data_info drops boxes with w < 1, h < 1 or
// no overlap with the image; we also drop empty masks and ids outside (0, 2^62). A mask whose
// size is not the image's is a corrupt sample (MASA_ERR).
static int source_prepare(const raw_sample *s, int64_t flag, int want_labels, source_instances *out) {
  memset(out, 0, sizeof *out);
  if (s->h < 1 || s->w < 1)
    return masa_error("%s: image size %dx%d is not positive", s->name, s->w, s->h);
  out->h = s->h, out->w = s->w;
  out->inst = callocCheck((size_t)(s->n_anns > 0 ? s->n_anns : 1), sizeof(instance));
  out->ids = callocCheck((size_t)(s->n_anns > 0 ? s->n_anns : 1), sizeof(int64_t));
  for (int i = 0; i < s->n_anns; i++) {
    const annotation *a = &s->anns[i];
    if (a->has_mask && (a->mask.h != s->h || a->mask.w != s->w)) {
      source_free(out);
      return masa_error("%s: annotation %lld: mask is %lldx%lld, image is %dx%d", s->name,
                        (long long)a->id, (long long)a->mask.w, (long long)a->mask.h, s->w, s->h);
    }
    double x = a->bbox[0], y = a->bbox[1], bw = a->bbox[2], bh = a->bbox[3];
    if (!(bw >= 1 && bh >= 1) || !isfinite(x) || !isfinite(y) || !isfinite(bw) || !isfinite(bh))
      continue;
    double iw = fmin(x + bw, s->w) - fmax(x, 0), ih = fmin(y + bh, s->h) - fmax(y, 0);
    if (!(iw > 0 && ih > 0)) continue;
    if (a->id <= 0 || a->id >= VIEWS_MIX_ID) continue;
    instance *in = &out->inst[out->n];
    in->id = a->id | flag;
    in->box[0] = x, in->box[1] = y, in->box[2] = x + bw, in->box[3] = y + bh;
    in->has_mask = a->has_mask;
    if (a->has_mask) {
      mask_rects_from_rle(&a->mask, &in->rects);
      if (in->rects.n == 0) {
        mask_rects_free(&in->rects);
        continue;
      }
      in->area = 0;
      for (int64_t q = 0; q < in->rects.n; q++) {
        const int32_t *r = in->rects.r + 4 * q;
        in->area += (int64_t)(r[2] - r[0]) * (r[3] - r[1]);
      }
    } else {
      in->area = (int64_t)(bw * bh);
    }
    out->ids[out->n] = in->id;
    out->n++;
  }
  if (want_labels) {
    mask_rects *m = callocCheck((size_t)(out->n > 0 ? out->n : 1), sizeof(mask_rects));
    int64_t *areas = mallocCheck((size_t)(out->n > 0 ? out->n : 1) * sizeof(int64_t));
    for (int i = 0; i < out->n; i++) m[i] = out->inst[i].rects, areas[i] = out->inst[i].area;
    label_image_build(out->h, out->w, m, areas, out->n, &out->labels);
    free(m);
    free(areas);
  }
  return MASA_OK;
}

// Box of one instance in a view. Returns 1 when visible (before the size filter).
static int instance_box(const views_opts *o, const instance *in, int is_mix, const geometry *g,
                        const affine2d *to_view, int src_h, int src_w, double box[4]) {
  if (o->boxes == BOX_EXACT) {
    if (in->has_mask) return box_exact(&in->rects, to_view, g->cw, g->ch, box);
    return box_exact_of_box(in->box, to_view, g->cw, g->ch, box);
  }
  // Official arithmetic: RandomAffine projects corners, clips to its frame and drops boxes
  // outside it; MixUp moves its boxes (no clip) and drops those outside the frame; Resize,
  // RandomCrop and RandomFlip move boxes without clipping; RandomCrop drops boxes outside it.
  double b[4];
  if (!is_mix) {
    box_project_corners(in->box, &g->affine, b);
    box_clip(b, src_w, src_h);
  } else {
    box_project_corners(in->box, &g->mix_box, b);
  }
  if (!box_is_inside(b, src_w, src_h)) return 0;
  box_project_corners(b, &g->post, box);
  return box_is_inside(box, g->cw, g->ch);
}

// Boxes of every instance of both sources in view v; returns the number visible, and keeps
// those passing the size filter in v->boxes / v->ids.
static int view_boxes(const views_opts *o, const source_instances *m, const source_instances *x,
                      const geometry *g, view *v) {
  int cap = m->n + (x ? x->n : 0);
  free(v->boxes);
  free(v->ids);
  v->boxes = mallocCheck((size_t)(cap > 0 ? cap : 1) * 4 * sizeof(float));
  v->ids = mallocCheck((size_t)(cap > 0 ? cap : 1) * sizeof(int64_t));
  v->n = 0;
  int visible = 0;
  for (int s = 0; s < 2; s++) {
    const source_instances *src = s == 0 ? m : x;
    if (!src) continue;
    const affine2d *T = s == 0 ? &v->src_to_view : &v->mix_to_view;
    for (int i = 0; i < src->n; i++) {
      double b[4];
      if (!instance_box(o, &src->inst[i], s == 1, g, T, m->h, m->w, b)) continue;
      visible++;
      if (!(b[2] - b[0] > o->min_box_wh && b[3] - b[1] > o->min_box_wh)) continue;
      float *fb = v->boxes + 4 * v->n;
      for (int c = 0; c < 4; c++) fb[c] = (float)b[c];
      v->ids[v->n++] = src->inst[i].id;
    }
  }
  return visible;
}

// Draws (or takes `fixed`) the parameters of both views and computes their boxes and id maps.
static views_status plan_with(const views_opts *o, source_instances *m, source_instances *x,
                              uint64_t seed, uint64_t stream, const view_params *fixed,
                              view_pair *out) {
  int mh = x ? x->h : 0, mw = x ? x->w : 0;
  int total = m->n + (x ? x->n : 0);
  out->size = o->size;
  out->has_mix = x != NULL;
  for (int k = 0; k < 2; k++) {
    view *v = &out->v[k];
    for (int retry = 0;; retry++) {
      view_params p;
      if (fixed) p = fixed[k];
      else view_params_draw(o, m->h, m->w, mh, mw, seed, stream, (uint64_t)(2 * retry + k) * 32, &p);
      view_geometry(o, &p, m->h, m->w, mh, mw, v);
      geometry g;
      geometry_of(o, &p, m->h, m->w, mh, mw, &g);
      int visible = view_boxes(o, m, x, &g, v);
      // RandomCrop with allow_negative_crop False: redraw a view that shows no instance.
      if (fixed || visible > 0 || total == 0 || retry >= o->max_retries) {
        out->retries[k] = retry;
        break;
      }
    }
    if (o->id_map_stride > 0) {
      int s = o->id_map_stride;
      v->map_stride = s;
      v->map_h = (o->size + s - 1) / s, v->map_w = (o->size + s - 1) / s;
      v->id_map = mallocCheck((size_t)v->map_h * v->map_w * sizeof(int64_t));
      id_map_render(v->id_map, v->map_h, v->map_w, s, v->content_w, v->content_h, &m->labels,
                    &v->src_to_view, m->ids, x ? &x->labels : NULL, &v->mix_to_view,
                    x ? x->ids : NULL);
    }
  }
  return VIEWS_OK;
}

static views_status prepare_both(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                                 source_instances *m, source_instances *x, int *use_mix) {
  int labels = o->id_map_stride > 0;
  if (source_prepare(main, 0, labels, m) != MASA_OK) return VIEWS_BAD_MAIN;
  *use_mix = 0;
  if (mix && o->mixup) {
    if (source_prepare(mix, VIEWS_MIX_ID, labels, x) != MASA_OK) {
      source_free(m);
      return VIEWS_BAD_MIX;
    }
    // mmdet MixUp leaves the image alone when the second image has no boxes.
    if (x->n > 0) *use_mix = 1;
    else source_free(x);
  }
  return VIEWS_OK;
}

views_status view_pair_plan(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                            uint64_t seed, uint64_t stream, view_pair *out) {
  memset(out, 0, sizeof *out);
  source_instances m, x;
  memset(&x, 0, sizeof x);
  int use_mix;
  views_status st = prepare_both(o, main, mix, &m, &x, &use_mix);
  if (st != VIEWS_OK) return st;
  st = plan_with(o, &m, use_mix ? &x : NULL, seed, stream, NULL, out);
  source_free(&m);
  if (use_mix) source_free(&x);
  return st;
}

views_status view_pair_plan_with(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                                 const view_params params[2], view_pair *out) {
  memset(out, 0, sizeof *out);
  source_instances m, x;
  memset(&x, 0, sizeof x);
  int use_mix;
  views_status st = prepare_both(o, main, mix, &m, &x, &use_mix);
  if (st != VIEWS_OK) return st;
  st = plan_with(o, &m, use_mix ? &x : NULL, 0, 0, params, out);
  source_free(&m);
  if (use_mix) source_free(&x);
  return st;
}

// View pixel index coordinates -> decoded-image index coordinates.
static affine2d view_to_decoded(const affine2d *src_to_view, int denom) {
  affine2d m = affine_mul(affine_inverse(*src_to_view), affine_translate(0.5, 0.5));
  m = affine_mul(affine_scale(1.0 / denom, 1.0 / denom), m);
  return affine_mul(affine_translate(-0.5, -0.5), m);
}

void view_render(const views_opts *o, view_pair *p, int k, const image_u8 *main_img,
                 int main_denom, const image_u8 *mix_img, int mix_denom, float *img) {
  view *v = &p->v[k];
  v->img = img;
  if (!img && !o->keep_u8) return;
  warp_source ms = {main_img, view_to_decoded(&v->src_to_view, main_denom)};
  warp_source xs = {mix_img, affine_identity()};
  if (p->has_mix) xs.to_img = view_to_decoded(&v->mix_to_view, mix_denom);
  if (o->keep_u8 && !v->px) v->px = mallocCheck((size_t)o->size * o->size * 3);
  warp_view(o->size, v->content_w, v->content_h, o->pad_value, &ms, p->has_mix ? &xs : NULL,
            o->hsv ? v->params.hsv_gain : NULL, o->mean, o->std, img, o->keep_u8 ? v->px : NULL);
}

// Decodes at 1/denom and checks the size against the annotations' (ceil(size / denom) for a
// JPEG scaled in the DCT domain; full size for formats that ignore the request).
static int decode_checked(const raw_sample *s, int denom, image_u8 *im, int *used) {
  if (!s->jpeg || s->jpeg_size == 0) return masa_error("%s: no image bytes", s->name);
  // A truncated JPEG decodes "successfully" with a grey tail: refuse it up front.
  if (image_check_complete(s->jpeg, s->jpeg_size, s->name) != MASA_OK) return MASA_ERR;
  if (image_decode(s->jpeg, s->jpeg_size, denom, im, s->name) != MASA_OK) return MASA_ERR;
  if (im->w == s->w && im->h == s->h) {
    *used = 1;
  } else if (im->w == (s->w + denom - 1) / denom && im->h == (s->h + denom - 1) / denom) {
    *used = denom;
  } else {
    int w = im->w, h = im->h;
    image_free(im);
    return masa_error("%s: image decodes to %dx%d, annotations say %dx%d", s->name, w, h, s->w, s->h);
  }
  return MASA_OK;
}

views_status view_pair_build(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                             uint64_t seed, uint64_t stream, view_pair *out, float *img0,
                             float *img1) {
  memset(out, 0, sizeof *out);
  source_instances m, x;
  memset(&x, 0, sizeof x);
  int use_mix;
  views_status st = prepare_both(o, main, mix, &m, &x, &use_mix);
  if (st != VIEWS_OK) return st;
  plan_with(o, &m, use_mix ? &x : NULL, seed, stream, NULL, out);
  source_free(&m);
  if (use_mix) source_free(&x);

  // The coarsest DCT scale that still gives both views at least one decoded pixel per view pixel.
  double need = fmax(affine_max_stretch(&out->v[0].src_to_view), affine_max_stretch(&out->v[1].src_to_view));
  image_u8 mi = {0, 0, NULL}, xi = {0, 0, NULL};
  if (decode_checked(main, o->jpeg_dct ? image_pick_denom(need) : 1, &mi, &out->main_denom) != MASA_OK) {
    view_pair_free(out);
    return VIEWS_BAD_MAIN;
  }
  if (use_mix) {
    double nx = fmax(affine_max_stretch(&out->v[0].mix_to_view), affine_max_stretch(&out->v[1].mix_to_view));
    if (decode_checked(mix, o->jpeg_dct ? image_pick_denom(nx) : 1, &xi, &out->mix_denom) != MASA_OK) {
      image_free(&mi);
      view_pair_free(out);
      return VIEWS_BAD_MIX;
    }
  }
  view_render(o, out, 0, &mi, out->main_denom, use_mix ? &xi : NULL, out->mix_denom, img0);
  view_render(o, out, 1, &mi, out->main_denom, use_mix ? &xi : NULL, out->mix_denom, img1);
  image_free(&mi);
  if (use_mix) image_free(&xi);
  return VIEWS_OK;
}
