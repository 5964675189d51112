// SA-1B per-image annotation files (sa1b_json.h).
#include "data/sa1b_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "data/ann_json.h"

void annotations_free(annotation *anns, int n) {
  if (!anns) return;
  for (int i = 0; i < n; i++)
    if (anns[i].has_mask) rle_free(&anns[i].mask);
  free(anns);
}

static int image_dim(const cJSON *img, const char *key, int *out, const char *what) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(img, key);
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
      v->valuedouble > 1 << 20)
    return masa_error("%s: image.%s is missing or not a positive integer", what, key);
  *out = (int)v->valuedouble;
  return MASA_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int sa1b_parse(const char *text, size_t n, int load_masks, const char *what, int *h, int *w,
               annotation **anns, int *n_anns, int *n_dropped) {
  *anns = NULL;
  *n_anns = 0;
  *n_dropped = 0;
  *h = *w = 0;
  if (n == 0) return masa_error("%s: annotation file is empty (0 bytes)", what);
  const char *at = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, n, &at, 0);
  if (!root) {
    long off = at && at >= text && at <= text + n ? (long)(at - text) : -1;
    return masa_error("%s: malformed JSON (parse error near byte %ld)", what, off);
  }
  int rc = MASA_OK;
  const cJSON *img = cJSON_GetObjectItemCaseSensitive(root, "image");
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "annotations");
  if (!cJSON_IsObject(img)) {
    rc = masa_error("%s: no \"image\" object", what);
  } else if (!cJSON_IsArray(list)) {
    rc = masa_error("%s: no \"annotations\" list", what);
  } else if (image_dim(img, "height", h, what) != MASA_OK || image_dim(img, "width", w, what) != MASA_OK) {
    rc = MASA_ERR;
  }
  if (rc != MASA_OK) {
    cJSON_Delete(root);
    return rc;
  }
  int cap = cJSON_GetArraySize(list), k = 0, i = 0;
  annotation *out = callocCheck((size_t)(cap > 0 ? cap : 1), sizeof(annotation));
  char where[512];
  for (const cJSON *a = list->child; a; a = a->next, i++) {
    annotation an = {0};
    snprintf(where, sizeof where, "%s: annotation %d", what, i);
    if (!cJSON_IsObject(a)) {
      rc = masa_error("%s: not an object", where);
      break;
    }
    if (ann_json_id(a, &an.id, where) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    snprintf(where, sizeof where, "%s: annotation %d (id %lld)", what, i, (long long)an.id);
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(a, "segmentation");
    if (seg && !cJSON_IsNull(seg)) {
      if (ann_json_segmentation(seg, *h, *w, &an.mask, where) != MASA_OK) {
        rc = MASA_ERR;
        break;
      }
      rle_bbox(&an.mask, an.bbox);
      if (load_masks) an.has_mask = 1;
      else rle_free(&an.mask);
    } else if (ann_json_bbox(a, an.bbox, where) != MASA_OK) {
      rc = MASA_ERR;
      break;
    }
    if (!(an.bbox[2] >= 1 && an.bbox[3] >= 1)) {  // empty mask or sub-pixel box
      if (an.has_mask) rle_free(&an.mask);
      (*n_dropped)++;
      continue;
    }
    out[k++] = an;
  }
  cJSON_Delete(root);
  if (rc == MASA_OK && k > 1) {
    int64_t *ids = mallocCheck((size_t)k * sizeof(int64_t));
    for (int j = 0; j < k; j++) ids[j] = out[j].id;
    qsort(ids, (size_t)k, sizeof(int64_t), cmp_i64);
    for (int j = 1; j < k && rc == MASA_OK; j++)
      if (ids[j] == ids[j - 1]) rc = masa_error("%s: duplicate annotation id %lld", what, (long long)ids[j]);
    free(ids);
  }
  if (rc != MASA_OK) {
    annotations_free(out, k);
    *n_dropped = 0;
    return MASA_ERR;
  }
  *anns = out;
  *n_anns = k;
  return MASA_OK;
}
