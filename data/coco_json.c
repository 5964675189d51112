// COCO instance files into the dataset index (coco_json.h).
#include "data/coco_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/ann_json.h"
#include "data/image.h"

typedef struct {
  int64_t id, entry;
} image_key;

typedef struct {
  int64_t entry, order;
  const cJSON *ann;
} ann_ref;

static int cmp_key(const void *a, const void *b) {
  const image_key *p = a, *q = b;
  if (p->id != q->id) return (p->id > q->id) - (p->id < q->id);
  return (p->entry > q->entry) - (p->entry < q->entry);
}

static int cmp_ref(const void *a, const void *b) {
  const ann_ref *p = a, *q = b;
  if (p->entry != q->entry) return (p->entry > q->entry) - (p->entry < q->entry);
  return (p->order > q->order) - (p->order < q->order);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int get_int(const cJSON *obj, const char *key, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
      fabs(v->valuedouble) > 9007199254740992.0)
    return 0;
  *out = (int64_t)v->valuedouble;
  return 1;
}

static void set_error(dataset_index *x, int64_t entry, const char *msg) {
  if (x->entries[entry].error == INDEX_NONE) x->entries[entry].error = index_str(x, msg);
}

// One image's annotations refs[0..n) into x; MASA_ERR (message set) on the first malformed one.
static int add_annotations(dataset_index *x, int64_t entry, const ann_ref *refs, int64_t n,
                           const char *path) {
  index_entry e = x->entries[entry];
  char what[512];
  for (int64_t k = 0; k < n; k++) {
    const cJSON *a = refs[k].ann;
    int64_t crowd = 0;
    if (get_int(a, "iscrowd", &crowd) && crowd) continue;
    snprintf(what, sizeof what, "%s: annotation %lld", path, (long long)refs[k].order);
    int64_t id;
    if (ann_json_id(a, &id, what) != MASA_OK) return MASA_ERR;
    snprintf(what, sizeof what, "%s: annotation %lld (id %lld)", path, (long long)refs[k].order,
             (long long)id);
    double box[4];
    if (ann_json_bbox(a, box, what) != MASA_OK) return MASA_ERR;
    uint64_t counts = INDEX_NONE;
    const cJSON *seg = cJSON_GetObjectItemCaseSensitive(a, "segmentation");
    int absent = !seg || cJSON_IsNull(seg) || (cJSON_IsArray(seg) && cJSON_GetArraySize(seg) == 0);
    if (!absent) {
      rle r;
      if (ann_json_segmentation(seg, e.h, e.w, &r, what) != MASA_OK) return MASA_ERR;
      char *s = rle_to_string(&r);
      counts = index_str(x, s);
      free(s);
      rle_free(&r);
    }
    index_ann *ia = index_add_ann(x);
    ia->id = id;
    memcpy(ia->bbox, box, sizeof box);
    ia->counts = counts;
  }
  int64_t first = x->entries[entry].first_ann, m = x->n_anns - first;
  if (m > 1) {
    int64_t *ids = mallocCheck((size_t)m * sizeof(int64_t));
    for (int64_t i = 0; i < m; i++) ids[i] = x->anns[first + i].id;
    qsort(ids, (size_t)m, sizeof(int64_t), cmp_i64);
    for (int64_t i = 1; i < m; i++)
      if (ids[i] == ids[i - 1]) {
        masa_error("%s: image %s has two annotations with id %lld", path,
                   index_get(x, e.name), (long long)ids[i]);
        free(ids);
        return MASA_ERR;
      }
    free(ids);
  }
  return MASA_OK;
}

int coco_build_index(const char *path, dataset_index *x) {
  uint8_t *buf;
  size_t n;
  if (file_read_all(path, &buf, &n) != MASA_OK) return MASA_ERR;
  const char *at = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf, n, &at, 0);
  long err_off = at ? (long)(at - (const char *)buf) : -1;
  free(buf);
  if (!root) return masa_error("%s: malformed JSON (parse error near byte %ld)", path, err_off);
  const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
  const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
  if (!cJSON_IsArray(images) || (anns && !cJSON_IsArray(anns))) {
    cJSON_Delete(root);
    return masa_error("%s: not a COCO instance file (needs an \"images\" list and an "
                      "\"annotations\" list)", path);
  }
  int64_t ni = cJSON_GetArraySize(images), base = x->n_entries, i = 0;
  image_key *keys = mallocCheck((size_t)(ni > 0 ? ni : 1) * sizeof *keys);
  char msg[512];
  for (const cJSON *im = images->child; im; im = im->next, i++) {
    index_entry *e = index_add_entry(x);
    int64_t entry = x->n_entries - 1, id = INT64_MIN, h = 0, w = 0;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(im, "file_name");
    if (cJSON_IsString(fn) && fn->valuestring[0]) {
      e->name = e->img = index_str(x, fn->valuestring);
    } else {
      snprintf(msg, sizeof msg, "images[%lld]", (long long)i);
      x->entries[entry].name = index_str(x, msg);
      snprintf(msg, sizeof msg, "%s: images[%lld] has no file_name", path, (long long)i);
      set_error(x, entry, msg);
    }
    if (!get_int(im, "id", &id)) {
      snprintf(msg, sizeof msg, "%s: images[%lld] has no integer id", path, (long long)i);
      set_error(x, entry, msg);
    }
    if (!get_int(im, "height", &h) || !get_int(im, "width", &w) || h < 1 || w < 1 || h > 1 << 20 ||
        w > 1 << 20) {
      snprintf(msg, sizeof msg, "%s: images[%lld] has no valid width and height", path, (long long)i);
      set_error(x, entry, msg);
      h = w = 0;
    }
    x->entries[entry].h = (int32_t)h;
    x->entries[entry].w = (int32_t)w;
    keys[i] = (image_key){id, entry};
  }
  qsort(keys, (size_t)ni, sizeof *keys, cmp_key);
  for (int64_t k = 1; k < ni; k++)
    if (keys[k].id == keys[k - 1].id && keys[k].id != INT64_MIN) {
      snprintf(msg, sizeof msg, "%s: image id %lld appears twice in \"images\"", path,
               (long long)keys[k].id);
      set_error(x, keys[k].entry, msg);
      set_error(x, keys[k - 1].entry, msg);
    }
  int64_t na = anns ? cJSON_GetArraySize(anns) : 0, nref = 0, unknown = 0, k = 0;
  ann_ref *refs = mallocCheck((size_t)(na > 0 ? na : 1) * sizeof *refs);
  for (const cJSON *a = anns ? anns->child : NULL; a; a = a->next, k++) {
    int64_t img_id;
    const image_key *hit = NULL;
    if (get_int(a, "image_id", &img_id)) {
      // First key with this id: the comparator orders equal ids by entry.
      int64_t lo = 0, hi = ni;
      while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (keys[mid].id < img_id) lo = mid + 1;
        else hi = mid;
      }
      if (lo < ni && keys[lo].id == img_id) hit = &keys[lo];
    }
    if (!hit) {
      unknown++;
      continue;
    }
    refs[nref++] = (ann_ref){hit->entry, k, a};
  }
  qsort(refs, (size_t)nref, sizeof *refs, cmp_ref);
  for (int64_t r = 0; r < nref;) {
    int64_t s = r, entry = refs[r].entry;
    while (r < nref && refs[r].entry == entry) r++;
    x->entries[entry].first_ann = x->n_anns;
    if (x->entries[entry].error != INDEX_NONE) continue;
    if (add_annotations(x, entry, refs + s, r - s, path) != MASA_OK) {
      x->n_anns = x->entries[entry].first_ann;  // the image is bad: drop what was added
      set_error(x, entry, masa_errmsg());
    }
    x->entries[entry].n_anns = x->n_anns - x->entries[entry].first_ann;
  }
  for (int64_t e = base; e < x->n_entries; e++)
    if (x->entries[e].n_anns == 0) x->entries[e].first_ann = 0;
  if (unknown)
    log_warn("%s: %lld annotations refer to image ids not in \"images\"; ignored", path,
             (long long)unknown);
  free(keys);
  free(refs);
  cJSON_Delete(root);
  return MASA_OK;
}
