// Recipe keys of the data pipeline: data.* (source, sampling, batching, normalisation) and aug.*
// (the two-view augmentation, masa-spec §5.3), with the official values as defaults.
#include <string.h>

#include "core/error.h"
#include "data/loader.h"

const cfg_key data_schema[] = {
    {"data.path", CFG_STRING, "", "dataset: SA-1B folder, SA-1B .tar shard(s) or COCO instance JSON"},
    {"data.image_root", CFG_STRING, "", "COCO JSON: folder of the images (empty: next to the JSON)"},
    {"data.index_dir", CFG_STRING, "", "where to cache the dataset index (empty: next to the data)"},
    {"data.masks", CFG_BOOL, "true", "load masks (exact boxes and id maps need them)"},
    {"data.sampling", CFG_STRING, "random", "random (uniform with replacement, official) | shuffle (a pass without replacement)"},
    {"data.epoch_length", CFG_INT, "200000", "samples per epoch over all ranks (official 200000; shuffle: 0 = dataset size)"},
    {"data.batch_size", CFG_INT, "8", "view pairs per batch per rank (official 8)"},
    {"data.workers", CFG_INT, "8", "loader threads"},
    {"data.prefetch", CFG_INT, "2", "batches prepared ahead"},
    {"data.seed", CFG_INT, "0", "seed of sampling and augmentation"},
    {"data.max_replace", CFG_INT, "100", "attempts to replace a bad sample before the loader gives up"},
    {"data.id_map_stride", CFG_INT, "0", "per-pixel instance-id maps at this stride (0: none)"},
    {"data.mean", CFG_FLOAT_LIST, "123.675, 116.28, 103.53", "RGB mean subtracted from the views"},
    {"data.std", CFG_FLOAT_LIST, "58.395, 57.12, 57.375", "RGB std dividing the views"},
    {"aug.view_size", CFG_INT, "1024", "view side S (official img_scale 1024)"},
    {"aug.pad_value", CFG_INT, "114", "border and padding value"},
    {"aug.affine", CFG_BOOL, "true", "SeqRandomAffine"},
    {"aug.rotate", CFG_FLOAT, "10", "max rotation, degrees"},
    {"aug.scale", CFG_FLOAT_LIST, "0.5, 1.5", "affine scale range"},
    {"aug.shear", CFG_FLOAT, "2", "max shear, degrees"},
    {"aug.translate", CFG_FLOAT, "0.1", "max translation, fraction of width/height"},
    {"aug.mixup", CFG_BOOL, "true", "SeqMixUp (always applied when on)"},
    {"aug.mixup_ratio", CFG_FLOAT_LIST, "0.8, 1.6", "mixup canvas jitter range"},
    {"aug.mixup_flip", CFG_FLOAT, "0.5", "mixup image flip probability"},
    {"aug.hsv", CFG_BOOL, "true", "YOLOXHSVRandomAug"},
    {"aug.hsv_gain", CFG_FLOAT_LIST, "5, 30, 30", "max hue (OpenCV units), saturation, value gains"},
    {"aug.hsv_prob", CFG_FLOAT, "0.5", "probability that each HSV channel is jittered"},
    {"aug.resize_ratio", CFG_FLOAT_LIST, "0.1, 2.0", "RandomResize ratio range of view_size"},
    {"aug.flip", CFG_FLOAT, "0.5", "horizontal flip probability"},
    {"aug.min_box", CFG_FLOAT, "1", "keep boxes with width and height above this (pixels)"},
    {"aug.box_mode", CFG_STRING, "exact", "exact (tight box of the mapped mask) | corners (official projected corners)"},
    {"aug.max_retries", CFG_INT, "15", "redraws of a view whose crop shows no instance"},
    {"aug.jpeg_dct", CFG_BOOL, "true", "decode JPEGs at 1/2, 1/4, 1/8 in the DCT domain when the view allows"},
    {NULL, 0, NULL, NULL}};

static int range2(const config *cfg, const char *key, double *lo, double *hi) {
  double v[CFG_MAX_LIST];
  if (config_float_list(cfg, key, v, CFG_MAX_LIST) != 2) return masa_error("%s needs two values (min, max)", key);
  if (!(v[0] <= v[1])) return masa_error("%s: min %g is above max %g", key, v[0], v[1]);
  *lo = v[0], *hi = v[1];
  return MASA_OK;
}

static int triple(const config *cfg, const char *key, double out[3]) {
  if (config_float_list(cfg, key, out, 3) != 3) return masa_error("%s needs three values", key);
  return MASA_OK;
}

int loader_opts_from_config(const config *cfg, loader_opts *o) {
  memset(o, 0, sizeof *o);
  o->path = config_str(cfg, "data.path");
  const char *root = config_str(cfg, "data.image_root"), *idx = config_str(cfg, "data.index_dir");
  o->ds.image_root = *root ? root : NULL;
  o->ds.index_dir = *idx ? idx : NULL;
  o->ds.load_masks = config_bool(cfg, "data.masks");
  const char *smp = config_str(cfg, "data.sampling");
  if (!strcmp(smp, "random")) o->sampling = SAMPLE_RANDOM;
  else if (!strcmp(smp, "shuffle")) o->sampling = SAMPLE_SHUFFLE;
  else return masa_error("data.sampling: expected random or shuffle, got '%s'", smp);
  o->epoch_length = config_int(cfg, "data.epoch_length");
  o->batch_size = (int)config_int(cfg, "data.batch_size");
  o->workers = (int)config_int(cfg, "data.workers");
  o->prefetch = (int)config_int(cfg, "data.prefetch");
  o->seed = (uint64_t)config_int(cfg, "data.seed");
  o->max_replace = (int)config_int(cfg, "data.max_replace");
  o->rank = 0, o->world = 1;

  views_opts *v = &o->views;
  views_opts_default(v);
  v->id_map_stride = (int)config_int(cfg, "data.id_map_stride");
  double t[3];
  if (triple(cfg, "data.mean", t) != MASA_OK) return MASA_ERR;
  for (int c = 0; c < 3; c++) v->mean[c] = (float)t[c];
  if (triple(cfg, "data.std", t) != MASA_OK) return MASA_ERR;
  for (int c = 0; c < 3; c++) v->std[c] = (float)t[c];
  v->size = (int)config_int(cfg, "aug.view_size");
  v->pad_value = (int)config_int(cfg, "aug.pad_value");
  v->affine = config_bool(cfg, "aug.affine");
  v->max_rotate_deg = config_float(cfg, "aug.rotate");
  if (range2(cfg, "aug.scale", &v->scale_min, &v->scale_max) != MASA_OK) return MASA_ERR;
  v->max_shear_deg = config_float(cfg, "aug.shear");
  v->max_translate = config_float(cfg, "aug.translate");
  v->mixup = config_bool(cfg, "aug.mixup");
  if (range2(cfg, "aug.mixup_ratio", &v->mix_ratio_min, &v->mix_ratio_max) != MASA_OK) return MASA_ERR;
  v->mix_flip_prob = config_float(cfg, "aug.mixup_flip");
  v->hsv = config_bool(cfg, "aug.hsv");
  if (triple(cfg, "aug.hsv_gain", v->hsv_delta) != MASA_OK) return MASA_ERR;
  v->hsv_prob = config_float(cfg, "aug.hsv_prob");
  if (range2(cfg, "aug.resize_ratio", &v->resize_min, &v->resize_max) != MASA_OK) return MASA_ERR;
  v->flip_prob = config_float(cfg, "aug.flip");
  v->min_box_wh = config_float(cfg, "aug.min_box");
  const char *bm = config_str(cfg, "aug.box_mode");
  if (!strcmp(bm, "exact")) v->boxes = BOX_EXACT;
  else if (!strcmp(bm, "corners")) v->boxes = BOX_CORNERS;
  else return masa_error("aug.box_mode: expected exact or corners, got '%s'", bm);
  v->max_retries = (int)config_int(cfg, "aug.max_retries");
  v->jpeg_dct = config_bool(cfg, "aug.jpeg_dct");
  return MASA_OK;
}
