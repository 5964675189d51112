// `masa views --data PATH --n N --out DIR`: the first N training pairs exactly as the loader
// makes them (epoch 0, positions 0..N-1 of rank 0, data.* and aug.* keys apply), each written as
// one image with the two views side by side, boxes and ids drawn in a colour per id (mixup
// instances marked "m"), plus DIR/views.json with every view's boxes, ids, parameters and its
// source->view transforms.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schemas.h"
#include "core/error.h"
#include "core/log.h"
#include "data/draw.h"
#include "data/loader.h"
#include "data/synth.h"

static const char *views_usage =
    "usage: masa views --data PATH --n N --out DIR [--format png|jpg] [--config FILE]\n"
    "                  [--set data.KEY=VALUE|aug.KEY=VALUE]...";

static cJSON *affine_json(const affine2d *m) {
  cJSON *a = cJSON_CreateArray();
  double rows[2][3] = {{m->a, m->b, m->tx}, {m->c, m->d, m->ty}};
  for (int r = 0; r < 2; r++) cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(rows[r], 3));
  return a;
}

static cJSON *view_json(const view *v, int has_mix) {
  cJSON *j = cJSON_CreateObject();
  int content[2] = {v->content_w, v->content_h};
  cJSON_AddItemToObject(j, "content_wh", cJSON_CreateIntArray(content, 2));
  cJSON_AddItemToObject(j, "src_to_view", affine_json(&v->src_to_view));
  if (has_mix) cJSON_AddItemToObject(j, "mix_to_view", affine_json(&v->mix_to_view));
  cJSON *boxes = cJSON_AddArrayToObject(j, "boxes"), *ids = cJSON_AddArrayToObject(j, "ids");
  cJSON *mix = cJSON_AddArrayToObject(j, "from_mixup");
  for (int i = 0; i < v->n; i++) {
    double b[4] = {v->boxes[4 * i], v->boxes[4 * i + 1], v->boxes[4 * i + 2], v->boxes[4 * i + 3]};
    cJSON_AddItemToArray(boxes, cJSON_CreateDoubleArray(b, 4));
    cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)(v->ids[i] & ~VIEWS_MIX_ID)));
    cJSON_AddItemToArray(mix, cJSON_CreateBool((v->ids[i] & VIEWS_MIX_ID) != 0));
  }
  const view_params *p = &v->params;
  cJSON *pj = cJSON_AddObjectToObject(j, "params");
  cJSON_AddNumberToObject(pj, "rotate_deg", p->rotate_deg);
  cJSON_AddNumberToObject(pj, "scale", p->scale);
  cJSON_AddNumberToObject(pj, "shear_x_deg", p->shear_x_deg);
  cJSON_AddNumberToObject(pj, "shear_y_deg", p->shear_y_deg);
  cJSON_AddNumberToObject(pj, "translate_x", p->translate_x);
  cJSON_AddNumberToObject(pj, "translate_y", p->translate_y);
  if (has_mix) {
    cJSON_AddNumberToObject(pj, "mix_jitter", p->mix_jitter);
    cJSON_AddBoolToObject(pj, "mix_flip", p->mix_flip);
    int off[2] = {p->mix_off_x, p->mix_off_y};
    cJSON_AddItemToObject(pj, "mix_offset", cJSON_CreateIntArray(off, 2));
  }
  cJSON_AddItemToObject(pj, "hsv_gain", cJSON_CreateIntArray(p->hsv_gain, 3));
  cJSON_AddNumberToObject(pj, "resize_ratio", p->resize_ratio);
  int crop[2] = {p->crop_x, p->crop_y};
  cJSON_AddItemToObject(pj, "crop_xy", cJSON_CreateIntArray(crop, 2));
  cJSON_AddBoolToObject(pj, "flip", p->flip);
  return j;
}

// The two views side by side with an 8-pixel gap, boxes and ids drawn.
static image_u8 pair_picture(const view_pair *p) {
  int S = p->size, gap = 8;
  image_u8 out = image_alloc(S, 2 * S + gap);
  memset(out.px, 255, (size_t)out.h * out.w * 3);
  int scale = S >= 512 ? 3 : S >= 256 ? 2 : 1;
  for (int k = 0; k < 2; k++) {
    const view *v = &p->v[k];
    image_u8 im = {S, S, v->px};
    image_u8 canvas = image_alloc(S, S);
    memcpy(canvas.px, im.px, (size_t)S * S * 3);
    for (int i = 0; i < v->n; i++) {
      uint8_t rgb[3];
      draw_id_colour(v->ids[i], rgb);
      const float *b = v->boxes + 4 * i;
      draw_box(&canvas, b[0], b[1], b[2], b[3], rgb, scale);
    }
    for (int i = 0; i < v->n; i++) {  // labels on top of every box
      uint8_t rgb[3];
      draw_id_colour(v->ids[i], rgb);
      const float *b = v->boxes + 4 * i;
      char label[32];
      snprintf(label, sizeof label, "%s%lld", (v->ids[i] & VIEWS_MIX_ID) ? "m" : "",
               (long long)(v->ids[i] & ~VIEWS_MIX_ID));
      draw_text(&canvas, (int)b[0], (int)b[1], label, rgb, scale);
    }
    draw_paste(&out, &canvas, k * (S + gap), 0);
    image_free(&canvas);
  }
  return out;
}

static int write_views(const config *cfg, const char *data, long n, const char *out_dir, int jpeg) {
  loader_opts o;
  if (loader_opts_from_config(cfg, &o) != MASA_OK) return MASA_ERR;
  o.path = data;
  o.views.keep_u8 = 1;
  o.batch_size = 1;  // position p of epoch 0 is batch p: the same pairs training sees first
  if (o.prefetch < 2) o.prefetch = 2;
  if (make_dirs(out_dir) != MASA_OK) return MASA_ERR;
  loader *l = loader_open(&o, NULL);
  if (!l) return MASA_ERR;
  log_info("views: %s", loader_describe(l));
  if (n > loader_batches_per_epoch(l)) {
    loader_close(l);
    return masa_error("--n %ld is more than one epoch (%lld pairs; raise data.epoch_length)", n,
                      (long long)loader_batches_per_epoch(l));
  }
  cJSON *root = cJSON_CreateObject(), *pairs = cJSON_AddArrayToObject(root, "pairs");
  cJSON_AddStringToObject(root, "data", data);
  cJSON_AddNumberToObject(root, "view_size", o.views.size);
  cJSON_AddStringToObject(root, "box_mode", o.views.boxes == BOX_EXACT ? "exact" : "corners");
  cJSON_AddStringToObject(root, "coordinates",
                          "continuous pixels: pixel (i, j) covers [j, j+1) x [i, i+1); boxes x1 y1 x2 y2; "
                          "src_to_view maps full-resolution source pixels to view pixels");
  int rc = MASA_OK;
  for (long k = 0; k < n; k++) {
    const loader_batch *b = loader_next(l);
    if (!b) {
      rc = MASA_ERR;
      break;
    }
    const view_pair *p = &b->pairs[0];
    char path[1024];
    snprintf(path, sizeof path, "%s/pair_%04ld.%s", out_dir, k, jpeg ? "jpg" : "png");
    image_u8 pic = pair_picture(p);
    rc = jpeg ? image_write_jpeg(&pic, 92, path) : image_write_png(&pic, path);
    image_free(&pic);
    if (rc != MASA_OK) break;
    cJSON *pj = cJSON_CreateObject();
    cJSON_AddStringToObject(pj, "image", path + strlen(out_dir) + 1);
    cJSON_AddNumberToObject(pj, "epoch", (double)b->cursor.epoch);
    cJSON_AddNumberToObject(pj, "position", (double)k);
    cJSON_AddNumberToObject(pj, "index", (double)b->index[0]);
    if (p->has_mix) cJSON_AddNumberToObject(pj, "mix_index", (double)b->mix_index[0]);
    cJSON_AddNumberToObject(pj, "decode_denom", p->main_denom);
    cJSON *vs = cJSON_AddArrayToObject(pj, "views");
    for (int v = 0; v < 2; v++) cJSON_AddItemToArray(vs, view_json(&p->v[v], p->has_mix));
    cJSON_AddItemToArray(pairs, pj);
    log_info("views: pair %ld: sample %lld%s, %d + %d boxes -> %s", k, (long long)b->index[0],
             p->has_mix ? " + mixup" : "", p->v[0].n, p->v[1].n, path);
  }
  if (rc == MASA_OK) {
    cJSON_AddNumberToObject(root, "skipped", (double)loader_skipped(l));
    char *text = cJSON_Print(root);
    char path[1024];
    snprintf(path, sizeof path, "%s/views.json", out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
      rc = masa_error("%s: cannot open for writing", path);
    } else {
      fputs(text, f);
      fputc('\n', f);
      if (fclose(f) != 0) rc = masa_error("%s: write failed", path);
    }
    free(text);
    if (rc == MASA_OK) printf("wrote %ld view pairs and %s (%lld bad samples skipped)\n", n, path,
                              (long long)loader_skipped(l));
  }
  cJSON_Delete(root);
  loader_close(l);
  return rc;
}

int cmd_views(int argc, char **argv) {
  config cfg;
  config_init(&cfg);
  register_all_schemas(&cfg);
  char *rest[256];
  int nrest = 0, rc = 1;
  const char *data = NULL, *out = NULL, *format = "png";
  long n = -1;
  if (argc > 256 || cli_parse_common(argc, argv, &cfg, rest, &nrest) != MASA_OK) {
    log_error("%s", argc > 256 ? "too many arguments" : masa_errmsg());
    config_free(&cfg);
    return 1;
  }
  for (int i = 0; i < nrest; i++) {
    const char *a = rest[i], *val = i + 1 < nrest ? rest[i + 1] : NULL;
    if (!val || (strcmp(a, "--data") && strcmp(a, "--n") && strcmp(a, "--out") && strcmp(a, "--format"))) {
      log_error("views: unexpected argument '%s'\n%s", a, views_usage);
      config_free(&cfg);
      return 1;
    }
    i++;
    if (!strcmp(a, "--data")) data = val;
    else if (!strcmp(a, "--out")) out = val;
    else if (!strcmp(a, "--format")) format = val;
    else {
      char *end;
      n = strtol(val, &end, 10);
      if (*end || n < 1) n = 0;
    }
  }
  if (!data && *config_str(&cfg, "data.path")) data = config_str(&cfg, "data.path");
  if (!data || !out || n < 1) {
    log_error("views: %s\n%s", n == 0 ? "--n expects a positive integer" : "--data, --n and --out are required", views_usage);
  } else if (strcmp(format, "png") && strcmp(format, "jpg")) {
    log_error("views: --format expects png or jpg, got '%s'", format);
  } else if (write_views(&cfg, data, n, out, !strcmp(format, "jpg")) != MASA_OK) {
    log_error("views: %s", masa_errmsg());
  } else {
    rc = 0;
  }
  config_free(&cfg);
  return rc;
}
