// BDD100K per-video JSON reader and writer (see bdd_format.h).
#include "eval/bdd_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "eval/json_file.h"

static const char *const class_names[BDD_NUM_CLASSES] = {"pedestrian", "rider", "car", "truck",
                                                         "bus", "train", "motorcycle", "bicycle"};

const char *bdd_class_name(int cls) { return cls >= 0 && cls < BDD_NUM_CLASSES ? class_names[cls] : "?"; }

int bdd_class_of(const char *category) {
  for (int c = 0; c < BDD_NUM_CLASSES; c++)
    if (!strcmp(category, class_names[c])) return c;
  return -1;
}

static int is_ignore_category(const char *c) {
  return !strcmp(c, "other person") || !strcmp(c, "other vehicle") || !strcmp(c, "trailer");
}

// String ids -> integers in order of first appearance (linear probing table).
typedef struct {
  char **keys;
  int64_t *vals;
  int64_t cap, n;
} id_table;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int64_t id_lookup(id_table *t, const char *key) {
  if (2 * (t->n + 1) > t->cap) {
    id_table u = {.cap = t->cap ? 2 * t->cap : 256};
    u.keys = callocCheck((size_t)u.cap, sizeof(char *));
    u.vals = callocCheck((size_t)u.cap, sizeof(int64_t));
    for (int64_t k = 0; k < t->cap; k++)
      if (t->keys[k]) {
        uint64_t h = hash_str(t->keys[k]) & (uint64_t)(u.cap - 1);
        while (u.keys[h]) h = (h + 1) & (uint64_t)(u.cap - 1);
        u.keys[h] = t->keys[k];
        u.vals[h] = t->vals[k];
      }
    u.n = t->n;
    free(t->keys);
    free(t->vals);
    *t = u;
  }
  uint64_t h = hash_str(key) & (uint64_t)(t->cap - 1);
  while (t->keys[h]) {
    if (!strcmp(t->keys[h], key)) return t->vals[h];
    h = (h + 1) & (uint64_t)(t->cap - 1);
  }
  t->keys[h] = strdup(key);
  t->vals[h] = t->n++;
  return t->vals[h];
}

static void id_table_free(id_table *t) {
  for (int64_t k = 0; k < t->cap; k++) free(t->keys[k]);
  free(t->keys);
  free(t->vals);
}

static int cmp_frame(const void *a, const void *b) {
  const bdd_frame *x = a, *y = b;
  return (x->index > y->index) - (x->index < y->index);
}

int bdd_read_video(const char *path, int is_gt, bdd_video *out) {
  memset(out, 0, sizeof *out);
  cJSON *root;
  if (json_load_file(path, &root) != MASA_OK) return MASA_ERR;
  // A video file is a list of frames; a {"frames": [...]} wrapper is accepted too.
  const cJSON *frames = root;
  if (cJSON_IsObject(root)) frames = cJSON_GetObjectItemCaseSensitive(root, "frames");
  if (!cJSON_IsArray(frames)) {
    cJSON_Delete(root);
    return masa_error("%s: expected a list of frames", path);
  }
  int nf = cJSON_GetArraySize(frames);
  out->frames = callocCheck((size_t)nf + 1, sizeof(bdd_frame));
  out->num_frames = nf;
  const char *stem = strrchr(path, '/');
  snprintf(out->name, sizeof out->name, "%s", stem ? stem + 1 : path);
  char *dot = strrchr(out->name, '.');
  if (dot) *dot = 0;
  id_table ids = {0};
  int rc = MASA_OK, f = 0;
  const cJSON *fr;
  cJSON_ArrayForEach(fr, frames) {
    bdd_frame *bf = &out->frames[f];
    double idx;
    if (!json_number(fr, "frameIndex", &idx) && !json_number(fr, "index", &idx)) {
      rc = masa_error("%s: frame %d: no frameIndex", path, f);
      break;
    }
    bf->index = (int)idx;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fr, "name");
    if (cJSON_IsString(nm)) snprintf(bf->name, sizeof bf->name, "%s", nm->valuestring);
    const cJSON *vn = cJSON_GetObjectItemCaseSensitive(fr, "videoName");
    if (f == 0 && cJSON_IsString(vn)) snprintf(out->name, sizeof out->name, "%s", vn->valuestring);
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(fr, "labels");
    int nl = cJSON_IsArray(labels) ? cJSON_GetArraySize(labels) : 0;
    bf->labels = callocCheck((size_t)nl + 1, sizeof(bdd_label));
    const cJSON *lab;
    int li = 0;
    if (nl) cJSON_ArrayForEach(lab, labels) {
      li++;
      const cJSON *cat = cJSON_GetObjectItemCaseSensitive(lab, "category");
      const cJSON *box = cJSON_GetObjectItemCaseSensitive(lab, "box2d");
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(lab, "id");
      if (!cJSON_IsString(cat) || !cJSON_IsObject(box)) {
        out->skipped++;
        continue;
      }
      bdd_label *l = &bf->labels[bf->n];
      double b[4];
      if (!json_number(box, "x1", &b[0]) || !json_number(box, "y1", &b[1]) || !json_number(box, "x2", &b[2]) ||
          !json_number(box, "y2", &b[3])) {
        rc = masa_error("%s: frame %d (index %d): label %d: box2d needs numbers x1, y1, x2, y2", path, f, bf->index,
                        li);
        break;
      }
      memcpy(l->box, b, sizeof b);
      l->cls = bdd_class_of(cat->valuestring);
      const cJSON *attr = cJSON_GetObjectItemCaseSensitive(lab, "attributes");
      int crowd = 0;
      if (cJSON_IsObject(attr)) {
        const cJSON *c1 = cJSON_GetObjectItemCaseSensitive(attr, "crowd");
        const cJSON *c2 = cJSON_GetObjectItemCaseSensitive(attr, "Crowd");
        crowd = cJSON_IsTrue(c1) || cJSON_IsTrue(c2);
      }
      if (is_gt) {
        l->ignore = is_ignore_category(cat->valuestring) || crowd;
        if (!l->ignore && l->cls < 0) {
          out->skipped++;
          continue;
        }
      }
      double sc = 1;
      json_number(lab, "score", &sc);
      l->score = sc;
      char idbuf[64];
      if (cJSON_IsString(id))
        l->id = id_lookup(&ids, id->valuestring);
      else if (cJSON_IsNumber(id)) {
        snprintf(idbuf, sizeof idbuf, "%.17g", id->valuedouble);
        l->id = id_lookup(&ids, idbuf);
      } else if (l->ignore) {
        l->id = -1;
      } else {
        rc = masa_error("%s: frame %d (index %d): label %d has no id", path, f, bf->index, li);
        break;
      }
      bf->n++;
    }
    if (rc != MASA_OK) break;
    f++;
  }
  id_table_free(&ids);
  cJSON_Delete(root);
  if (rc != MASA_OK) {
    bdd_video_free(out);
    return rc;
  }
  qsort(out->frames, (size_t)nf, sizeof(bdd_frame), cmp_frame);
  for (int k = 1; k < nf; k++)
    if (out->frames[k].index == out->frames[k - 1].index) {
      int dup = out->frames[k].index;
      bdd_video_free(out);
      return masa_error("%s: frameIndex %d appears twice", path, dup);
    }
  return MASA_OK;
}

int bdd_align_frames(const bdd_video *gt, bdd_video *res, const char *res_path) {
  bdd_frame *al = callocCheck((size_t)gt->num_frames + 1, sizeof(bdd_frame));
  int j = 0;
  for (int t = 0; t < gt->num_frames; t++) {
    al[t].index = gt->frames[t].index;
    snprintf(al[t].name, sizeof al[t].name, "%s", gt->frames[t].name);
    while (j < res->num_frames && res->frames[j].index < gt->frames[t].index) {
      int bad = res->frames[j].index;
      for (int k = 0; k < gt->num_frames; k++) free(al[k].labels);
      free(al);
      return masa_error("%s: frameIndex %d is not a frame of the ground truth video %s", res_path, bad, gt->name);
    }
    if (j < res->num_frames && res->frames[j].index == gt->frames[t].index) {
      al[t].n = res->frames[j].n;
      al[t].labels = res->frames[j].labels;
      res->frames[j].labels = NULL;
      j++;
    }
  }
  if (j < res->num_frames) {
    int bad = res->frames[j].index;
    for (int k = 0; k < gt->num_frames; k++) free(al[k].labels);
    free(al);
    return masa_error("%s: frameIndex %d is not a frame of the ground truth video %s", res_path, bad, gt->name);
  }
  for (int k = 0; k < res->num_frames; k++) free(res->frames[k].labels);
  free(res->frames);
  res->frames = al;
  res->num_frames = gt->num_frames;
  return MASA_OK;
}

void bdd_video_free(bdd_video *v) {
  if (v->frames)
    for (int k = 0; k < v->num_frames; k++) free(v->frames[k].labels);
  free(v->frames);
  v->frames = NULL;
  v->num_frames = 0;
}

int bdd_write_video(const char *path, const bdd_video *v) {
  cJSON *root = cJSON_CreateArray();
  for (int t = 0; t < v->num_frames; t++) {
    const bdd_frame *f = &v->frames[t];
    cJSON *fr = cJSON_CreateObject();
    cJSON_AddStringToObject(fr, "name", f->name);
    cJSON_AddStringToObject(fr, "videoName", v->name);
    cJSON_AddNumberToObject(fr, "frameIndex", f->index);
    cJSON *labels = cJSON_AddArrayToObject(fr, "labels");
    for (int k = 0; k < f->n; k++) {
      const bdd_label *l = &f->labels[k];
      cJSON *lab = cJSON_CreateObject();
      char idbuf[32];
      snprintf(idbuf, sizeof idbuf, "%lld", (long long)l->id);
      cJSON_AddStringToObject(lab, "id", idbuf);
      cJSON_AddStringToObject(lab, "category", l->ignore && l->cls < 0 ? "other person" : bdd_class_name(l->cls));
      cJSON *box = cJSON_AddObjectToObject(lab, "box2d");
      cJSON_AddNumberToObject(box, "x1", l->box[0]);
      cJSON_AddNumberToObject(box, "y1", l->box[1]);
      cJSON_AddNumberToObject(box, "x2", l->box[2]);
      cJSON_AddNumberToObject(box, "y2", l->box[3]);
      cJSON_AddNumberToObject(lab, "score", l->score);
      cJSON_AddItemToArray(labels, lab);
    }
    cJSON_AddItemToArray(root, fr);
  }
  int rc = json_write_file(path, root);
  cJSON_Delete(root);
  return rc;
}
