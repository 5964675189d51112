// Frames and detections for `masa track` (see det_reader.h).
#include "eval/det_reader.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "eval/json_file.h"
#include "eval/mot_format.h"

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_image_ext(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  char ext[8] = {0};
  for (int k = 0; k < 7 && dot[k]; k++) ext[k] = (char)tolower((unsigned char)dot[k]);
  return !strcmp(ext, ".jpg") || !strcmp(ext, ".jpeg") || !strcmp(ext, ".png");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int list_images(const char *dir, frame_seq *out) {
  DIR *d = opendir(dir);
  if (!d) return masa_error("%s: cannot open folder (%s)", dir, strerror(errno));
  int cap = 64, n = 0;
  char **files = mallocCheck((size_t)cap * sizeof(char *));
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || !has_image_ext(de->d_name)) continue;
    if (n == cap) {
      cap *= 2;
      files = realloc(files, (size_t)cap * sizeof(char *));
      if (!files) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
    }
    files[n++] = strdup(de->d_name);
  }
  closedir(d);
  if (n == 0) {
    free(files);
    return masa_error("%s: no .jpg, .jpeg or .png frames", dir);
  }
  qsort(files, (size_t)n, sizeof(char *), cmp_str);
  out->files = files;
  out->num_frames = n;
  return MASA_OK;
}

int frame_seq_open(const char *path, frame_seq *out) {
  memset(out, 0, sizeof *out);
  if (!is_dir(path)) return masa_error("%s: not a folder (expected a MOTChallenge sequence or a folder of images)", path);
  snprintf(out->seq_dir, sizeof out->seq_dir, "%s", path);
  size_t len = strlen(out->seq_dir);
  while (len > 1 && out->seq_dir[len - 1] == '/') out->seq_dir[--len] = 0;
  snprintf(out->name, sizeof out->name, "%s", base_name(out->seq_dir));
  char ini[1100];
  snprintf(ini, sizeof ini, "%s/seqinfo.ini", out->seq_dir);
  if (is_file(ini)) {
    mot_seqinfo si;
    if (mot_read_seqinfo(ini, &si) != MASA_OK) return MASA_ERR;
    out->is_mot = 1;
    out->fps = si.frame_rate;
    if (si.name[0]) snprintf(out->name, sizeof out->name, "%s", si.name);
    snprintf(out->dir, sizeof out->dir, "%s/%s", out->seq_dir, si.im_dir[0] ? si.im_dir : "img1");
    if (list_images(out->dir, out) != MASA_OK) return MASA_ERR;
    if (si.seq_length > 0 && si.seq_length != out->num_frames)
      log_warn("%s: seqLength %d but %d frames in %s; using the frames found", ini, si.seq_length, out->num_frames,
               out->dir);
    return MASA_OK;
  }
  snprintf(out->dir, sizeof out->dir, "%s", out->seq_dir);
  return list_images(out->dir, out);
}

void frame_seq_free(frame_seq *s) {
  for (int t = 0; t < s->num_frames; t++) free(s->files[t]);
  free(s->files);
  memset(s, 0, sizeof *s);
}

void frame_seq_path(const frame_seq *s, int t, char *buf, int bufsize) {
  snprintf(buf, (size_t)bufsize, "%s/%s", s->dir, s->files[t]);
}

int frame_seq_load(const frame_seq *s, int t, image_u8 *out) {
  char path[2048];
  frame_seq_path(s, t, path, sizeof path);
  uint8_t *buf;
  size_t n;
  if (file_read_all(path, &buf, &n) != MASA_OK) return MASA_ERR;
  int rc = image_decode(buf, n, 1, out, path);
  free(buf);
  return rc;
}

// ---------------------------------------------------------------------------- detections

typedef struct {
  int frame;
  det_box d;
} raw_det;

typedef struct {
  raw_det *v;
  int64_t n, cap;
} raw_list;

static void raw_push(raw_list *l, int frame, const double *xyxy, double score, int label) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->v = realloc(l->v, (size_t)l->cap * sizeof(raw_det));
    if (!l->v) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
  }
  raw_det *r = &l->v[l->n++];
  r->frame = frame;
  for (int k = 0; k < 4; k++) r->d.box[k] = (float)xyxy[k];
  r->d.score = (float)score;
  r->d.label = label;
}

// Groups by frame, keeping file order within a frame.
static void finish(raw_list *l, det_set *out) {
  int nf = out->num_frames;
  out->start = callocCheck((size_t)nf + 1, sizeof(int64_t));
  out->dets = mallocCheck((size_t)(l->n + 1) * sizeof(det_box));
  for (int64_t k = 0; k < l->n; k++) out->start[l->v[k].frame + 1]++;
  for (int t = 0; t < nf; t++) out->start[t + 1] += out->start[t];
  int64_t *fill = mallocCheck((size_t)(nf + 1) * sizeof(int64_t));
  memcpy(fill, out->start, (size_t)(nf + 1) * sizeof(int64_t));
  for (int64_t k = 0; k < l->n; k++) out->dets[fill[l->v[k].frame]++] = l->v[k].d;
  out->n = l->n;
  free(fill);
  free(l->v);
  memset(l, 0, sizeof *l);
}

static int read_mot(const char *path, const frame_seq *fs, det_set *out, raw_list *l) {
  mot_rows rows;
  if (mot_read(path, &rows) != MASA_OK) return MASA_ERR;
  for (int64_t k = 0; k < rows.n; k++) {
    const double *v = rows.rows[k].v;
    int t = (int)v[0] - 1;
    if (v[0] != (double)(t + 1) || t < 0 || t >= fs->num_frames) {
      out->dropped++;
      continue;
    }
    double xyxy[4] = {v[2], v[3], v[2] + v[4], v[3] + v[5]};
    raw_push(l, t, xyxy, rows.rows[k].ncols >= 7 ? v[6] : 1.0, 0);
  }
  mot_rows_free(&rows);
  return MASA_OK;
}

// Frame of a COCO image id: by numeric file-name stem when all stems are numbers, else 1-based.
static int coco_frame_of(const frame_seq *fs, const int64_t *stem_num, int64_t image_id) {
  if (stem_num) {
    for (int t = 0; t < fs->num_frames; t++)
      if (stem_num[t] == image_id) return t;
    return -1;
  }
  return image_id >= 1 && image_id <= fs->num_frames ? (int)(image_id - 1) : -1;
}

static int read_coco(const char *path, const cJSON *root, const frame_seq *fs, det_set *out, raw_list *l) {
  int nf = fs->num_frames;
  int64_t *stem_num = mallocCheck((size_t)nf * sizeof(int64_t));
  for (int t = 0; t < nf; t++) {
    char *end;
    const char *s = fs->files[t];
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '.') {
      free(stem_num);
      stem_num = NULL;
      break;
    }
    stem_num[t] = v;
  }
  out->frame_image_id = mallocCheck((size_t)nf * sizeof(int64_t));
  for (int t = 0; t < nf; t++) out->frame_image_id[t] = stem_num ? stem_num[t] : t + 1;
  int cap = 16;
  out->label_cat_id = mallocCheck((size_t)cap * sizeof(int64_t));
  int idx = 0, rc = MASA_OK;
  const cJSON *e;
  cJSON_ArrayForEach(e, root) {
    double image_id, cat = 1, score = 1;
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(e, "bbox");
    if (!json_number(e, "image_id", &image_id) || !cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) {
      rc = masa_error("%s: result %d: expected image_id and bbox [x, y, w, h]", path, idx);
      break;
    }
    json_number(e, "category_id", &cat);
    json_number(e, "score", &score);
    double b[4];
    for (int k = 0; k < 4; k++) {
      const cJSON *x = cJSON_GetArrayItem(bb, k);
      if (!cJSON_IsNumber(x)) {
        rc = masa_error("%s: result %d: bbox[%d] is not a number", path, idx, k);
        break;
      }
      b[k] = x->valuedouble;
    }
    if (rc != MASA_OK) break;
    idx++;
    int t = coco_frame_of(fs, stem_num, (int64_t)image_id);
    if (t < 0) {
      out->dropped++;
      continue;
    }
    int label = -1;
    for (int q = 0; q < out->num_labels && label < 0; q++)
      if (out->label_cat_id[q] == (int64_t)cat) label = q;
    if (label < 0) {
      if (out->num_labels == cap) {
        cap *= 2;
        out->label_cat_id = realloc(out->label_cat_id, (size_t)cap * sizeof(int64_t));
        if (!out->label_cat_id) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
      }
      label = out->num_labels++;
      out->label_cat_id[label] = (int64_t)cat;
    }
    double xyxy[4] = {b[0], b[1], b[0] + b[2], b[1] + b[3]};
    raw_push(l, t, xyxy, score, label);
  }
  free(stem_num);
  return rc;
}

static int read_bdd(const char *path, const cJSON *frames, const frame_seq *fs, det_set *out, raw_list *l) {
  int nf = fs->num_frames;
  out->frame_index = mallocCheck((size_t)nf * sizeof(int));
  out->frame_name = callocCheck((size_t)nf, sizeof *out->frame_name);
  for (int t = 0; t < nf; t++) out->frame_index[t] = -1;
  int cap = 16, fi = 0, rc = MASA_OK;
  out->label_name = callocCheck((size_t)cap, sizeof *out->label_name);
  const cJSON *fr;
  cJSON_ArrayForEach(fr, frames) {
    double index = -1;
    if (!json_number(fr, "frameIndex", &index)) json_number(fr, "index", &index);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fr, "name");
    const cJSON *vn = cJSON_GetObjectItemCaseSensitive(fr, "videoName");
    if (!out->video_name[0] && cJSON_IsString(vn)) snprintf(out->video_name, sizeof out->video_name, "%s", vn->valuestring);
    int t = -1;
    if (cJSON_IsString(nm))
      for (int q = 0; q < nf && t < 0; q++)
        if (!strcmp(fs->files[q], base_name(nm->valuestring))) t = q;
    if (t < 0 && index >= 0 && index < nf) t = (int)index;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(fr, "labels");
    if (t < 0) {
      out->dropped += cJSON_IsArray(labels) ? cJSON_GetArraySize(labels) : 0;
      fi++;
      continue;
    }
    out->frame_index[t] = index >= 0 ? (int)index : t;
    if (cJSON_IsString(nm)) snprintf(out->frame_name[t], sizeof out->frame_name[t], "%s", nm->valuestring);
    const cJSON *lab;
    int li = 0;
    if (cJSON_IsArray(labels)) cJSON_ArrayForEach(lab, labels) {
      const cJSON *box = cJSON_GetObjectItemCaseSensitive(lab, "box2d");
      const cJSON *cat = cJSON_GetObjectItemCaseSensitive(lab, "category");
      double b[4], score = 1;
      if (!cJSON_IsObject(box) || !json_number(box, "x1", &b[0]) || !json_number(box, "y1", &b[1]) ||
          !json_number(box, "x2", &b[2]) || !json_number(box, "y2", &b[3])) {
        rc = masa_error("%s: frame %d: label %d: expected box2d {x1, y1, x2, y2}", path, fi, li);
        break;
      }
      json_number(lab, "score", &score);
      const char *cname = cJSON_IsString(cat) ? cat->valuestring : "object";
      int label = -1;
      for (int q = 0; q < out->num_labels && label < 0; q++)
        if (!strcmp(out->label_name[q], cname)) label = q;
      if (label < 0) {
        if (out->num_labels == cap) {
          cap *= 2;
          out->label_name = realloc(out->label_name, (size_t)cap * sizeof *out->label_name);
          if (!out->label_name) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
        }
        label = out->num_labels++;
        snprintf(out->label_name[label], sizeof out->label_name[label], "%s", cname);
      }
      raw_push(l, t, b, score, label);
      li++;
    }
    if (rc != MASA_OK) break;
    fi++;
  }
  return rc;
}

int det_read(const char *path, int format, const frame_seq *fs, det_set *out) {
  memset(out, 0, sizeof *out);
  out->num_frames = fs->num_frames;
  raw_list l = {0};
  int rc;
  const char *dot = strrchr(path, '.');
  if (format < 0) format = dot && !strcmp(dot, ".json") ? -2 : DETS_MOT;
  if (format == DETS_MOT) {
    out->format = DETS_MOT;
    rc = read_mot(path, fs, out, &l);
  } else {
    cJSON *root;
    if (json_load_file(path, &root) != MASA_OK) return MASA_ERR;
    const cJSON *list = root;
    if (cJSON_IsObject(root)) list = cJSON_GetObjectItemCaseSensitive(root, "frames");
    if (!cJSON_IsArray(list)) {
      cJSON_Delete(root);
      return masa_error("%s: expected a list of COCO results or of BDD100K frames", path);
    }
    if (format == -2) {
      const cJSON *first = cJSON_GetArrayItem(list, 0);
      format = first && (cJSON_GetObjectItemCaseSensitive(first, "labels") ||
                         cJSON_GetObjectItemCaseSensitive(first, "frameIndex")) ? DETS_BDD : DETS_COCO;
      if (list != root) format = DETS_BDD;
    }
    out->format = (det_format)format;
    rc = format == DETS_BDD ? read_bdd(path, list, fs, out, &l) : read_coco(path, list, fs, out, &l);
    cJSON_Delete(root);
  }
  if (rc != MASA_OK) {
    free(l.v);
    det_set_free(out);
    return MASA_ERR;
  }
  finish(&l, out);
  return MASA_OK;
}

void det_set_free(det_set *d) {
  free(d->start);
  free(d->dets);
  free(d->label_cat_id);
  free(d->label_name);
  free(d->frame_image_id);
  free(d->frame_index);
  free(d->frame_name);
  memset(d, 0, sizeof *d);
}
