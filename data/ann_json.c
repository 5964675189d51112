// Annotation fields in JSON (ann_json.h).
#include "data/ann_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"

static int as_int(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v)) return 0;
  double d = v->valuedouble;
  if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) return 0;
  *out = (int64_t)d;
  return 1;
}

int ann_json_id(const cJSON *ann, int64_t *id, const char *what) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, "id");
  if (!v) return masa_error("%s: no \"id\"", what);
  if (!as_int(v, id) || *id <= 0) return masa_error("%s: \"id\" is not a positive integer", what);
  return MASA_OK;
}

int ann_json_bbox(const cJSON *ann, double box[4], const char *what) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, "bbox");
  if (!v) return masa_error("%s: no \"bbox\"", what);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 4)
    return masa_error("%s: \"bbox\" is not an array of 4 numbers", what);
  for (int i = 0; i < 4; i++) {
    const cJSON *e = cJSON_GetArrayItem(v, i);
    if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
      return masa_error("%s: \"bbox\" is not an array of 4 numbers", what);
    box[i] = e->valuedouble;
  }
  return MASA_OK;
}

static int rle_dict(const cJSON *seg, int64_t h, int64_t w, rle *out, const char *what) {
  const cJSON *size = cJSON_GetObjectItemCaseSensitive(seg, "size");
  const cJSON *counts = cJSON_GetObjectItemCaseSensitive(seg, "counts");
  int64_t sh, sw;
  if (!cJSON_IsArray(size) || cJSON_GetArraySize(size) != 2 ||
      !as_int(cJSON_GetArrayItem(size, 0), &sh) || !as_int(cJSON_GetArrayItem(size, 1), &sw))
    return masa_error("%s: segmentation.size is not [h, w]", what);
  if (sh != h || sw != w)
    return masa_error("%s: segmentation.size [%lld, %lld] differs from the image size [%lld, %lld]",
                      what, (long long)sh, (long long)sw, (long long)h, (long long)w);
  if (cJSON_IsString(counts)) return rle_from_string(counts->valuestring, h, w, out, what);
  if (cJSON_IsArray(counts)) {
    int m = cJSON_GetArraySize(counts);
    int64_t *c = mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
    int i = 0;
    for (const cJSON *e = counts->child; e; e = e->next, i++)
      if (!as_int(e, &c[i])) {
        free(c);
        return masa_error("%s: segmentation.counts[%d] is not an integer", what, i);
      }
    int rc = rle_from_counts(c, m, h, w, out, what);
    free(c);
    return rc;
  }
  return masa_error("%s: segmentation.counts is neither an RLE string nor a list of runs", what);
}

static int polygons(const cJSON *seg, int64_t h, int64_t w, rle *out, const char *what) {
  int np = cJSON_GetArraySize(seg);
  if (np == 0) return masa_error("%s: segmentation is an empty list of polygons", what);
  rle *parts = callocCheck((size_t)np, sizeof(rle));
  int rc = MASA_OK, k = 0;
  for (const cJSON *poly = seg->child; poly && rc == MASA_OK; poly = poly->next, k++) {
    int nc = cJSON_IsArray(poly) ? cJSON_GetArraySize(poly) : -1;
    if (nc < 2 || nc % 2) {
      rc = masa_error("%s: segmentation polygon %d is not a list of x, y pairs", what, k);
      break;
    }
    double *xy = mallocCheck((size_t)nc * sizeof(double));
    int i = 0;
    for (const cJSON *e = poly->child; e; e = e->next, i++) {
      if (!cJSON_IsNumber(e)) {
        rc = masa_error("%s: segmentation polygon %d has a non-number at %d", what, k, i);
        break;
      }
      xy[i] = e->valuedouble;
    }
    // Fewer than 3 points enclose nothing: an empty part (pycocotools would read a 4-number
    // "polygon" as a box; such entries are malformed and not worth imitating).
    if (rc == MASA_OK && nc < 6) rc = rle_from_counts((int64_t[]){h * w}, 1, h, w, &parts[k], what);
    else if (rc == MASA_OK) rc = rle_from_polygon(xy, nc / 2, h, w, &parts[k], what);
    free(xy);
  }
  if (rc == MASA_OK) {
    if (np == 1) {
      *out = parts[0];
      parts[0] = (rle){0};
    } else {
      rc = rle_union(parts, np, h, w, out);
    }
  }
  for (int i = 0; i < np; i++) rle_free(&parts[i]);
  free(parts);
  return rc;
}

int ann_json_segmentation(const cJSON *seg, int64_t h, int64_t w, rle *out, const char *what) {
  memset(out, 0, sizeof *out);
  if (cJSON_IsObject(seg)) return rle_dict(seg, h, w, out, what);
  if (cJSON_IsArray(seg)) return polygons(seg, h, w, out, what);
  return masa_error("%s: segmentation is neither an RLE object nor a list of polygons", what);
}
