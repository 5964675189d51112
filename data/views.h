// Two-view training pairs: the official MASA recipe (masa-spec §5.3) with independent random
// parameters per view, every step composed into ONE source->view affine map so each view is
// resampled from the decoded source once (bilinear, border = pad value):
//   SeqRandomAffine  M = T*Sh*R*S about the origin, output frame = source size, border 114
//   SeqMixUp         one second image shared by both views (its own jitter/flip/crop per view),
//                    0.5/0.5 blend with uint8 truncation; its instances get ids | VIEWS_MIX_ID
//   YOLOXHSVRandomAug  gains U(-1,1)*(5,30,30), each channel w.p. 0.5, OpenCV 8-bit HSV
//   RandomResize     long side int(S*r), r ~ U(0.1, 2.0), keep ratio
//   RandomCrop       S x S (whole image if smaller); RandomFlip p 0.5; Pad to S x S with 114
//   FilterMatchAnnotations  keep boxes with w > 1 and h > 1
// Coordinates are continuous (data/transform.h): pixel (i, j) covers [j, j+1) x [i, i+1).
// Boxes are exact by default: the tight box of the instance's mask mapped through the view's map
// and clipped to the view's image content (box_mode exact). box_mode corners reproduces the
// official box arithmetic (projected corners, clipped after the affine step only, later steps
// unclipped). Boxes-only annotations always use corners (clipped to the content in exact mode).
// Deviations from the official pipeline (all below the resampling noise floor): one resample
// instead of a chain of warps and resizes; HSV jitter is applied per output pixel after
// resampling instead of on the intermediate frame; JPEGs are decoded at 1/2, 1/4, 1/8 in the DCT
// domain when the view needs no more resolution; the affine map is anchored at the pixel
// corner origin (0, 0) instead of the centre of pixel 0; a view whose crop shows no instance is
// redrawn on its own (up to max_retries, then kept empty) instead of retrying both views.
// Every random draw is rng_*(seed, stream, k) for a small k: a pair is a pure function of
// (seed, stream, the two samples).
#ifndef MASA_VIEWS_H
#define MASA_VIEWS_H

#include <stdint.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/transform.h"

// Mixup instances carry their annotation id with this bit set, so they never collide with the
// main image's ids (annotation ids are positive and below 2^62).
#define VIEWS_MIX_ID (INT64_C(1) << 62)

typedef enum { BOX_EXACT = 0, BOX_CORNERS = 1 } box_mode;

typedef struct {
  int size;                       // S, view side (official 1024)
  int pad_value;                  // 114
  int affine;                     // SeqRandomAffine on/off
  double max_rotate_deg;          // 10
  double scale_min, scale_max;    // 0.5, 1.5
  double max_shear_deg;           // 2
  double max_translate;           // 0.1 (fraction of width / height)
  int mixup;                      // SeqMixUp on/off
  double mix_ratio_min, mix_ratio_max;  // 0.8, 1.6
  double mix_flip_prob;           // 0.5
  int hsv;                        // YOLOXHSVRandomAug on/off
  double hsv_delta[3];            // 5, 30, 30 (hue in OpenCV units of 2 degrees)
  double hsv_prob;                // 0.5, per channel
  double resize_min, resize_max;  // 0.1, 2.0
  double flip_prob;               // 0.5
  double min_box_wh;              // 1: keep boxes with w > 1 and h > 1
  box_mode boxes;                 // BOX_EXACT
  int max_retries;                // 15: redraws of a view whose crop shows no instance
  int jpeg_dct;                   // decode JPEGs downscaled in the DCT domain when allowed
  int id_map_stride;              // > 0: per-pixel instance-id map at this stride
  int keep_u8;                    // also keep the (S, S, 3) uint8 RGB view (for drawing)
  float mean[3], std[3];          // RGB normalisation (123.675 116.28 103.53 / 58.395 57.12 57.375)
} views_opts;

void views_opts_default(views_opts *o);  // the official recipe at S = 1024

// The random draws of one view (integers already resolved against the image sizes).
typedef struct {
  double rotate_deg, scale, shear_x_deg, shear_y_deg;
  double translate_x, translate_y;  // source pixels
  double mix_jitter;                // canvas scale
  int mix_flip, mix_off_x, mix_off_y;
  int hsv_gain[3];                  // added to H (0..179, mod 180), S and V (clipped)
  double resize_ratio;
  int crop_x, crop_y;
  int flip;
} view_params;

typedef struct {
  view_params params;
  affine2d src_to_view;       // main image (full-resolution source pixels) -> view pixels
  affine2d mix_to_view;       // mixup image -> view pixels (when the pair has a mixup image)
  int content_w, content_h;   // image content is [0, content_w) x [0, content_h); the rest is pad
  int n;                      // instances in this view
  float *boxes;               // (n, 4) x1, y1, x2, y2 in view pixels
  int64_t *ids;               // (n)
  int64_t *id_map;            // (map_h, map_w) topmost instance id per cell centre, 0 = none
  int map_h, map_w, map_stride;
  float *img;                 // (3, S, S) normalised RGB; borrowed from the caller (may be NULL)
  uint8_t *px;                // (S, S, 3) RGB when opts.keep_u8, malloc'd
} view;

typedef struct {
  int size;                   // S
  int has_mix;                // a mixup image was blended in
  int main_denom, mix_denom;  // JPEG DCT scale denominators used
  int retries[2];             // redraws used per view
  view v[2];                  // key view, reference view
} view_pair;

void view_pair_free(view_pair *p);  // boxes, ids, id maps, px (not the borrowed img)

// Which input was bad when view_pair_build fails (message in masa_errmsg()).
typedef enum { VIEWS_OK = 0, VIEWS_BAD_MAIN = 1, VIEWS_BAD_MIX = 2 } views_status;

// The whole pair: validates annotations, draws parameters, computes boxes (and id maps),
// decodes both images at the coarsest DCT scale the views allow, renders both views into
// img0 / img1 ((3, S, S) each; NULL skips the float output). mix may be NULL (no mixup; also
// when the mixup image has no valid instance, as in the official MixUp). Returns VIEWS_OK or the
// bad input (annotation masks of the wrong size, undecodable or mis-sized image).
views_status view_pair_build(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                             uint64_t seed, uint64_t stream, view_pair *out, float *img0,
                             float *img1);

// The steps of view_pair_build, public for tests and tools.
// (1) Geometry only: parameters, maps, boxes, ids, id maps (images are not touched; sizes come
// from main->h, main->w). Same status codes.
views_status view_pair_plan(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                            uint64_t seed, uint64_t stream, view_pair *out);
// (1b) The same with given parameters for both views (no redraws); tests use it to replay the
// official chain.
views_status view_pair_plan_with(const views_opts *o, const raw_sample *main, const raw_sample *mix,
                                 const view_params params[2], view_pair *out);
// (2) Pixels of view k from decoded images whose pixel pitch is 1/denom source pixel.
// mix_img may be NULL when !p->has_mix.
void view_render(const views_opts *o, view_pair *p, int k, const image_u8 *main_img,
                 int main_denom, const image_u8 *mix_img, int mix_denom, float *img);
// Draws the parameters of one view (index0: first counter used; a view uses 32).
void view_params_draw(const views_opts *o, int src_h, int src_w, int mix_h, int mix_w,
                      uint64_t seed, uint64_t stream, uint64_t index0, view_params *p);
// Maps and content size of a view from its parameters (mix_h = 0: no mixup image).
void view_geometry(const views_opts *o, const view_params *p, int src_h, int src_w, int mix_h,
                   int mix_w, view *v);

#endif
