// Result writers for `masa track` (see tracker_output.h).
#include "eval/tracker_output.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "eval/bdd_format.h"
#include "eval/json_file.h"

void track_results_push(track_results *r, int frame, int64_t id, const float *box, float score, int label) {
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 1024;
    r->rows = realloc(r->rows, (size_t)r->cap * sizeof(track_row));
    if (!r->rows) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
  track_row *w = &r->rows[r->n++];
  w->frame = frame;
  w->id = id;
  memcpy(w->box, box, sizeof w->box);
  w->score = score;
  w->label = label;
}

void track_results_free(track_results *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

int results_format_parse(const char *name) {
  if (!strcmp(name, "mot")) return RESULTS_MOT;
  if (!strcmp(name, "tao")) return RESULTS_TAO;
  if (!strcmp(name, "bdd")) return RESULTS_BDD;
  return -1;
}

static int write_mot(const char *path, const track_results *r) {
  FILE *f = fopen(path, "w");
  if (!f) return masa_error("%s: cannot create (%s)", path, strerror(errno));
  for (int64_t k = 0; k < r->n; k++) {
    const track_row *w = &r->rows[k];
    fprintf(f, "%d,%lld,%.2f,%.2f,%.2f,%.2f,%.4f,-1,-1,-1\n", w->frame + 1, (long long)w->id + 1, w->box[0], w->box[1],
            w->box[2] - w->box[0], w->box[3] - w->box[1], w->score);
  }
  if (fclose(f) != 0) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}

static cJSON *xywh(const float *b) {
  double v[4] = {b[0], b[1], b[2] - b[0], b[3] - b[1]};
  for (int k = 0; k < 4; k++) v[k] = (double)(float)v[k];
  return cJSON_CreateDoubleArray(v, 4);
}

static int write_tao(const char *path, const track_results *r, const det_set *d) {
  cJSON *root = cJSON_CreateArray();
  for (int64_t k = 0; k < r->n; k++) {
    const track_row *w = &r->rows[k];
    cJSON *o = cJSON_CreateObject();
    int coco = d && d->format == DETS_COCO;
    cJSON_AddNumberToObject(o, "image_id", (double)(coco ? d->frame_image_id[w->frame] : w->frame + 1));
    cJSON_AddNumberToObject(o, "video_id", 1);
    cJSON_AddNumberToObject(o, "category_id",
                            (double)(coco && w->label >= 0 && w->label < d->num_labels ? d->label_cat_id[w->label] : 1));
    cJSON_AddNumberToObject(o, "track_id", (double)(w->id + 1));
    cJSON_AddItemToObject(o, "bbox", xywh(w->box));
    cJSON_AddNumberToObject(o, "score", w->score);
    cJSON_AddItemToArray(root, o);
  }
  int rc = json_write_file(path, root);
  cJSON_Delete(root);
  return rc;
}

static int write_bdd(const char *path, const track_results *r, const frame_seq *fs, const det_set *d) {
  int bdd = d && d->format == DETS_BDD;
  cJSON *root = cJSON_CreateArray();
  cJSON **labels = mallocCheck((size_t)fs->num_frames * sizeof(cJSON *));
  for (int t = 0; t < fs->num_frames; t++) {
    cJSON *fr = cJSON_CreateObject();
    cJSON_AddStringToObject(fr, "name", bdd && d->frame_name[t][0] ? d->frame_name[t] : fs->files[t]);
    cJSON_AddStringToObject(fr, "videoName", bdd && d->video_name[0] ? d->video_name : fs->name);
    cJSON_AddNumberToObject(fr, "frameIndex", bdd && d->frame_index[t] >= 0 ? d->frame_index[t] : t);
    labels[t] = cJSON_AddArrayToObject(fr, "labels");
    cJSON_AddItemToArray(root, fr);
  }
  for (int64_t k = 0; k < r->n; k++) {
    const track_row *w = &r->rows[k];
    cJSON *lab = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)w->id + 1);
    cJSON_AddStringToObject(lab, "id", id);
    const char *cat = bdd && w->label >= 0 && w->label < d->num_labels ? d->label_name[w->label]
                      : w->label >= 0 && w->label < BDD_NUM_CLASSES ? bdd_class_name(w->label)
                                                                     : "pedestrian";
    cJSON_AddStringToObject(lab, "category", cat);
    cJSON *box = cJSON_AddObjectToObject(lab, "box2d");
    cJSON_AddNumberToObject(box, "x1", w->box[0]);
    cJSON_AddNumberToObject(box, "y1", w->box[1]);
    cJSON_AddNumberToObject(box, "x2", w->box[2]);
    cJSON_AddNumberToObject(box, "y2", w->box[3]);
    cJSON_AddNumberToObject(lab, "score", w->score);
    cJSON_AddItemToArray(labels[w->frame], lab);
  }
  free(labels);
  int rc = json_write_file(path, root);
  cJSON_Delete(root);
  return rc;
}

int track_results_write(const char *path, results_format fmt, const track_results *r, const frame_seq *frames,
                        const det_set *dets) {
  if (fmt == RESULTS_TAO) return write_tao(path, r, dets);
  if (fmt == RESULTS_BDD) return write_bdd(path, r, frames, dets);
  return write_mot(path, r);
}
