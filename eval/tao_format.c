// TAO ground truth and results JSON (see tao_format.h).
#include "eval/tao_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "eval/json_file.h"
#include "eval/metrics.h"

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t find_sorted(const int64_t *a, int64_t n, int64_t key) {
  const int64_t *p = bsearch(&key, a, (size_t)n, sizeof(int64_t), cmp_i64);
  return p ? p - a : -1;
}

static int get_i64(const cJSON *o, const char *key, int64_t *out) {
  double v;
  if (!json_number(o, key, &v)) return 0;
  *out = (int64_t)v;
  return 1;
}

static int get_bbox(const cJSON *o, double box[4]) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bbox");
  if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 4) return 0;
  double v[4];
  for (int k = 0; k < 4; k++) {
    const cJSON *x = cJSON_GetArrayItem(b, k);
    if (!cJSON_IsNumber(x)) return 0;
    v[k] = x->valuedouble;
  }
  box[0] = v[0];
  box[1] = v[1];
  box[2] = v[0] + v[2];
  box[3] = v[1] + v[3];
  return 1;
}

typedef struct {
  int64_t id, video_id, frame_index;
} img_rec;

static int cmp_img(const void *a, const void *b) {
  const img_rec *x = a, *y = b;
  if (x->video_id != y->video_id) return (x->video_id > y->video_id) - (x->video_id < y->video_id);
  if (x->frame_index != y->frame_index) return (x->frame_index > y->frame_index) - (x->frame_index < y->frame_index);
  return (x->id > y->id) - (x->id < y->id);
}

int tao_read_gt(const char *path, tao_dataset *out) {
  memset(out, 0, sizeof *out);
  cJSON *root;
  if (json_load_file(path, &root) != MASA_OK) return MASA_ERR;
  const cJSON *videos = cJSON_GetObjectItemCaseSensitive(root, "videos");
  const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
  const cJSON *anns = cJSON_GetObjectItemCaseSensitive(root, "annotations");
  const cJSON *cats = cJSON_GetObjectItemCaseSensitive(root, "categories");
  if (!cJSON_IsArray(videos) || !cJSON_IsArray(images) || !cJSON_IsArray(anns) || !cJSON_IsArray(cats)) {
    cJSON_Delete(root);
    return masa_error("%s: a TAO ground truth needs lists \"videos\", \"images\", \"annotations\", \"categories\"", path);
  }
  int rc = MASA_OK;
  // Videos, in file order.
  int nv = cJSON_GetArraySize(videos);
  out->videos = callocCheck((size_t)nv + 1, sizeof(tao_video));
  out->num_videos = nv;
  int64_t *vid_sorted = mallocCheck(((size_t)nv + 1) * sizeof(int64_t));
  int k = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, videos) {
    if (!get_i64(o, "id", &out->videos[k].id)) {
      rc = masa_error("%s: videos[%d]: no id", path, k);
      break;
    }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (cJSON_IsString(nm))
      snprintf(out->videos[k].name, sizeof out->videos[k].name, "%s", nm->valuestring);
    else
      snprintf(out->videos[k].name, sizeof out->videos[k].name, "video_%lld", (long long)out->videos[k].id);
    vid_sorted[k] = out->videos[k].id;
    k++;
  }
  qsort(vid_sorted, (size_t)nv, sizeof(int64_t), cmp_i64);
  int *vid_index = mallocCheck(((size_t)nv + 1) * sizeof(int));
  for (int v = 0; v < nv; v++) vid_index[find_sorted(vid_sorted, nv, out->videos[v].id)] = v;
  // Images -> (video, timestep).
  int64_t ni = cJSON_GetArraySize(images);
  img_rec *imgs = mallocCheck(((size_t)ni + 1) * sizeof(img_rec));
  k = 0;
  if (rc == MASA_OK) cJSON_ArrayForEach(o, images) {
    if (!get_i64(o, "id", &imgs[k].id) || !get_i64(o, "video_id", &imgs[k].video_id)) {
      rc = masa_error("%s: images[%d]: needs id and video_id", path, k);
      break;
    }
    if (!get_i64(o, "frame_index", &imgs[k].frame_index)) imgs[k].frame_index = imgs[k].id;
    if (find_sorted(vid_sorted, nv, imgs[k].video_id) < 0) {
      rc = masa_error("%s: images[%d]: video_id %lld is not in \"videos\"", path, k, (long long)imgs[k].video_id);
      break;
    }
    k++;
  }
  if (rc == MASA_OK) {
    qsort(imgs, (size_t)ni, sizeof(img_rec), cmp_img);
    out->num_images = ni;
    out->img_sorted = mallocCheck(((size_t)ni + 1) * sizeof(int64_t));
    out->img_video = mallocCheck(((size_t)ni + 1) * sizeof(int));
    out->img_frame = mallocCheck(((size_t)ni + 1) * sizeof(int));
    for (int64_t i = 0; i < ni; i++) {
      int v = vid_index[find_sorted(vid_sorted, nv, imgs[i].video_id)];
      out->videos[v].num_frames++;
    }
    for (int v = 0; v < nv; v++) {
      out->videos[v].image_ids = mallocCheck(((size_t)out->videos[v].num_frames + 1) * sizeof(int64_t));
      out->videos[v].num_frames = 0;
    }
    for (int64_t i = 0; i < ni; i++) {
      int v = vid_index[find_sorted(vid_sorted, nv, imgs[i].video_id)];
      out->videos[v].image_ids[out->videos[v].num_frames++] = imgs[i].id;
      out->img_sorted[i] = imgs[i].id;
    }
    qsort(out->img_sorted, (size_t)ni, sizeof(int64_t), cmp_i64);
    for (int64_t i = 1; i < ni; i++)
      if (out->img_sorted[i] == out->img_sorted[i - 1]) {
        rc = masa_error("%s: image id %lld appears twice", path, (long long)out->img_sorted[i]);
        break;
      }
    for (int v = 0; v < nv && rc == MASA_OK; v++)
      for (int t = 0; t < out->videos[v].num_frames; t++) {
        int64_t p = find_sorted(out->img_sorted, ni, out->videos[v].image_ids[t]);
        out->img_video[p] = v;
        out->img_frame[p] = t;
      }
  }
  free(imgs);
  free(vid_sorted);
  free(vid_index);
  // Categories: names by id.
  int ncat = cJSON_GetArraySize(cats);
  int64_t *cat_ids = mallocCheck(((size_t)ncat + 1) * sizeof(int64_t));
  const char **cat_names = callocCheck((size_t)ncat + 1, sizeof(char *));
  k = 0;
  if (rc == MASA_OK) cJSON_ArrayForEach(o, cats) {
    if (!get_i64(o, "id", &cat_ids[k])) {
      rc = masa_error("%s: categories[%d]: no id", path, k);
      break;
    }
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    cat_names[k] = cJSON_IsString(nm) ? nm->valuestring : NULL;
    k++;
  }
  // Annotations.
  int64_t na = cJSON_GetArraySize(anns);
  out->anns = callocCheck((size_t)na + 1, sizeof(tao_det));
  int64_t *used = mallocCheck(((size_t)na + 1) * sizeof(int64_t));
  k = 0;
  if (rc == MASA_OK) cJSON_ArrayForEach(o, anns) {
    tao_det *d = &out->anns[k];
    int64_t img;
    if (!get_i64(o, "image_id", &img) || !get_i64(o, "track_id", &d->track_id) ||
        !get_i64(o, "category_id", &d->category_id) || !get_bbox(o, d->box)) {
      rc = masa_error("%s: annotations[%d]: needs image_id, track_id, category_id and bbox [x, y, w, h]", path, k);
      break;
    }
    int64_t p = find_sorted(out->img_sorted, out->num_images, img);
    if (p < 0) {
      rc = masa_error("%s: annotations[%d]: image_id %lld is not in \"images\"", path, k, (long long)img);
      break;
    }
    d->video = out->img_video[p];
    d->frame = out->img_frame[p];
    d->score = 1;
    used[k] = d->category_id;
    k++;
  }
  out->num_anns = k;
  if (rc == MASA_OK) {
    qsort(used, (size_t)k, sizeof(int64_t), cmp_i64);
    int nu = 0;
    for (int64_t i = 0; i < k; i++)
      if (nu == 0 || used[nu - 1] != used[i]) used[nu++] = used[i];
    out->num_eval_classes = nu;
    out->eval_class_cat = mallocCheck(((size_t)nu + 1) * sizeof(int64_t));
    out->eval_class_names = callocCheck((size_t)nu + 1, sizeof(char *));
    for (int c = 0; c < nu; c++) {
      out->eval_class_cat[c] = used[c];
      const char *name = NULL;
      for (int q = 0; q < ncat; q++)
        if (cat_ids[q] == used[c]) name = cat_names[q];
      char buf[64];
      if (!name) {
        snprintf(buf, sizeof buf, "category_%lld", (long long)used[c]);
        name = buf;
      }
      out->eval_class_names[c] = strdup(name);
    }
    for (int64_t i = 0; i < out->num_anns; i++)
      out->anns[i].cls = (int)find_sorted(out->eval_class_cat, nu, out->anns[i].category_id);
  }
  free(used);
  free(cat_ids);
  free(cat_names);
  cJSON_Delete(root);
  if (rc != MASA_OK) tao_dataset_free(out);
  return rc;
}

void tao_dataset_free(tao_dataset *d) {
  if (d->videos)
    for (int v = 0; v < d->num_videos; v++) free(d->videos[v].image_ids);
  free(d->videos);
  free(d->img_sorted);
  free(d->img_video);
  free(d->img_frame);
  free(d->eval_class_cat);
  if (d->eval_class_names)
    for (int c = 0; c < d->num_eval_classes; c++) free(d->eval_class_names[c]);
  free(d->eval_class_names);
  free(d->anns);
  memset(d, 0, sizeof *d);
}

int tao_read_results(const char *path, const tao_dataset *gt, tao_results *out) {
  memset(out, 0, sizeof *out);
  cJSON *root;
  if (json_load_file(path, &root) != MASA_OK) return MASA_ERR;
  if (!cJSON_IsArray(root)) {
    cJSON_Delete(root);
    return masa_error("%s: TAO results must be a JSON list of boxes", path);
  }
  int64_t n = cJSON_GetArraySize(root);
  out->dets = callocCheck((size_t)n + 1, sizeof(tao_det));
  int rc = MASA_OK;
  int64_t k = 0, i = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, root) {
    tao_det *d = &out->dets[k];
    int64_t img;
    if (!get_i64(o, "image_id", &img) || !get_i64(o, "track_id", &d->track_id) ||
        !get_i64(o, "category_id", &d->category_id) || !get_bbox(o, d->box)) {
      rc = masa_error("%s: result %lld: needs image_id, track_id, category_id and bbox [x, y, w, h]", path,
                      (long long)i);
      break;
    }
    i++;
    d->score = 1;
    json_number(o, "score", &d->score);
    int64_t p = find_sorted(gt->img_sorted, gt->num_images, img);
    if (p < 0) {
      out->dropped++;
      continue;
    }
    d->video = gt->img_video[p];
    d->frame = gt->img_frame[p];
    d->cls = (int)find_sorted(gt->eval_class_cat, gt->num_eval_classes, d->category_id);
    k++;
  }
  out->n = k;
  cJSON_Delete(root);
  if (rc != MASA_OK) tao_results_free(out);
  return rc;
}

void tao_results_free(tao_results *r) {
  free(r->dets);
  memset(r, 0, sizeof *r);
}

typedef struct {
  int video;
  int64_t track, cat;
  int64_t idx;
} vote_rec;

static int cmp_vote(const void *a, const void *b) {
  const vote_rec *x = a, *y = b;
  if (x->video != y->video) return (x->video > y->video) - (x->video < y->video);
  if (x->track != y->track) return (x->track > y->track) - (x->track < y->track);
  return (x->cat > y->cat) - (x->cat < y->cat);
}

void tao_results_vote_track_class(tao_results *r, const tao_dataset *gt) {
  vote_rec *v = mallocCheck(((size_t)r->n + 1) * sizeof(vote_rec));
  for (int64_t i = 0; i < r->n; i++) v[i] = (vote_rec){r->dets[i].video, r->dets[i].track_id, r->dets[i].category_id, i};
  qsort(v, (size_t)r->n, sizeof(vote_rec), cmp_vote);
  for (int64_t a = 0; a < r->n;) {
    int64_t b = a;
    while (b < r->n && v[b].video == v[a].video && v[b].track == v[a].track) b++;
    // Within the track, categories are sorted: the first longest run is the smallest mode.
    int64_t best = v[a].cat, best_n = 0;
    for (int64_t p = a; p < b;) {
      int64_t q = p;
      while (q < b && v[q].cat == v[p].cat) q++;
      if (q - p > best_n) {
        best_n = q - p;
        best = v[p].cat;
      }
      p = q;
    }
    for (int64_t p = a; p < b; p++) {
      tao_det *d = &r->dets[v[p].idx];
      d->category_id = best;
      d->cls = (int)find_sorted(gt->eval_class_cat, gt->num_eval_classes, best);
    }
    a = b;
  }
  free(v);
}

void tao_build_teta_seq(const tao_dataset *gt, const tao_results *res, int video, teta_seq *s) {
  int nf = gt->videos[video].num_frames;
  s->num_frames = nf;
  s->frames = callocCheck((size_t)nf + 1, sizeof(teta_frame));
  for (int pass = 0; pass < 2; pass++) {
    const tao_det *d = pass == 0 ? gt->anns : res->dets;
    int64_t n = pass == 0 ? gt->num_anns : res->n;
    for (int64_t i = 0; i < n; i++)
      if (d[i].video == video) {
        if (pass == 0)
          s->frames[d[i].frame].n_gt++;
        else
          s->frames[d[i].frame].n_tr++;
      }
  }
  for (int t = 0; t < nf; t++) {
    teta_frame *f = &s->frames[t];
    f->gt_ids = mallocCheck(((size_t)f->n_gt + 1) * sizeof(int64_t));
    f->tr_ids = mallocCheck(((size_t)f->n_tr + 1) * sizeof(int64_t));
    f->gt_cls = mallocCheck(((size_t)f->n_gt + 1) * sizeof(int));
    f->tr_cls = mallocCheck(((size_t)f->n_tr + 1) * sizeof(int));
    f->sim = mallocCheck(((size_t)f->n_gt * f->n_tr + 1) * sizeof(double));
    f->n_gt = f->n_tr = 0;
  }
  const tao_det **gb = mallocCheck(((size_t)gt->num_anns + 1) * sizeof(tao_det *));
  const tao_det **tb = mallocCheck(((size_t)res->n + 1) * sizeof(tao_det *));
  int64_t *goff = callocCheck((size_t)nf + 1, sizeof(int64_t)), *toff = callocCheck((size_t)nf + 1, sizeof(int64_t));
  // Frame-major copies (file order within a frame) to compute each frame's IoU matrix.
  for (int64_t i = 0; i < gt->num_anns; i++)
    if (gt->anns[i].video == video) goff[gt->anns[i].frame + 1]++;
  for (int64_t i = 0; i < res->n; i++)
    if (res->dets[i].video == video) toff[res->dets[i].frame + 1]++;
  for (int t = 0; t < nf; t++) {
    goff[t + 1] += goff[t];
    toff[t + 1] += toff[t];
  }
  for (int64_t i = 0; i < gt->num_anns; i++) {
    const tao_det *d = &gt->anns[i];
    if (d->video != video) continue;
    teta_frame *f = &s->frames[d->frame];
    gb[goff[d->frame] + f->n_gt] = d;
    f->gt_ids[f->n_gt] = d->track_id;
    f->gt_cls[f->n_gt] = d->cls;
    f->n_gt++;
  }
  for (int64_t i = 0; i < res->n; i++) {
    const tao_det *d = &res->dets[i];
    if (d->video != video) continue;
    teta_frame *f = &s->frames[d->frame];
    tb[toff[d->frame] + f->n_tr] = d;
    f->tr_ids[f->n_tr] = d->track_id;
    f->tr_cls[f->n_tr] = d->cls;
    f->n_tr++;
  }
  for (int t = 0; t < nf; t++) {
    teta_frame *f = &s->frames[t];
    for (int i = 0; i < f->n_gt; i++)
      for (int j = 0; j < f->n_tr; j++)
        f->sim[(size_t)i * f->n_tr + j] = eval_box_iou(gb[goff[t] + i]->box, tb[toff[t] + j]->box, 0);
  }
  free(gb);
  free(tb);
  free(goff);
  free(toff);
}

int tao_write_results(const char *path, const tao_dataset *gt, const tao_results *r) {
  cJSON *root = cJSON_CreateArray();
  for (int64_t i = 0; i < r->n; i++) {
    const tao_det *d = &r->dets[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "image_id", (double)gt->videos[d->video].image_ids[d->frame]);
    cJSON_AddNumberToObject(o, "video_id", (double)gt->videos[d->video].id);
    cJSON_AddNumberToObject(o, "category_id", (double)d->category_id);
    cJSON_AddNumberToObject(o, "track_id", (double)d->track_id);
    double b[4] = {d->box[0], d->box[1], d->box[2] - d->box[0], d->box[3] - d->box[1]};
    cJSON_AddItemToObject(o, "bbox", cJSON_CreateDoubleArray(b, 4));
    cJSON_AddNumberToObject(o, "score", d->score);
    cJSON_AddItemToArray(root, o);
  }
  int rc = json_write_file(path, root);
  cJSON_Delete(root);
  return rc;
}
