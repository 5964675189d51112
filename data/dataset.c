// Image collections with instance annotations (dataset.h): source detection, index building and
// caching, and per-sample loading.
// Source specs: a .tar file, a .json COCO file, a folder (of .tar shards, or of NAME.json +
// NAME.jpg pairs), or a comma-separated list of .tar files, folders of them and globs.
// Samples: SA-1B folder: one per NAME.json, in natural name order (sa_2 before sa_10); tar
// shards: one per NAME.json member, shard by shard (natural order), in member order; COCO: one
// per entry of "images", in file order. A JSON without its image is still a sample (its load
// fails with "image not found"), an image without JSON is skipped (nothing to learn from).
// Index cache: SPEC.masa-index next to a single file or folder (trailing '/' dropped), or
// FOLDER/masa-index-HASH.masa-index for lists and globs, or in opts->index_dir. When the
// cache cannot be written the dataset still opens (a warning says it will be rebuilt next time).
#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#include "data/coco_json.h"
#include "data/dataset_index.h"
#include "data/image.h"
#include "data/sa1b_json.h"
#include "data/tar.h"

struct dataset {
  dataset_index x;
  char *image_root;  // COCO: folder of file_name paths
  int load_masks;
  int reused;
  char index_path[PATH_MAX + 64];
  char desc[512];
};

// ---- small helpers ----------------------------------------------------------------------------

typedef struct {
  char **s;
  int64_t n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    char **ns = mallocCheck((size_t)l->cap * sizeof(char *));
    if (l->n) memcpy(ns, l->s, (size_t)l->n * sizeof(char *));
    free(l->s);
    l->s = ns;
  }
  l->s[l->n] = mallocCheck(strlen(s) + 1);
  strcpy(l->s[l->n++], s);
}

static void strlist_free(strlist *l) {
  for (int64_t i = 0; i < l->n; i++) free(l->s[i]);
  free(l->s);
  memset(l, 0, sizeof *l);
}

// Natural order: digit runs compare as numbers, so sa_2 sorts before sa_10.
static int natural_cmp(const char *a, const char *b) {
  while (*a && *b) {
    if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
      while (*a == '0' && isdigit((unsigned char)a[1])) a++;
      while (*b == '0' && isdigit((unsigned char)b[1])) b++;
      size_t la = 0, lb = 0;
      while (isdigit((unsigned char)a[la])) la++;
      while (isdigit((unsigned char)b[lb])) lb++;
      if (la != lb) return la < lb ? -1 : 1;
      int c = strncmp(a, b, la);
      if (c) return c;
      a += la;
      b += lb;
    } else {
      if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
      a++;
      b++;
    }
  }
  return (unsigned char)*a - (unsigned char)*b;
}

static int natural_cmp_p(const void *a, const void *b) {
  int c = natural_cmp(*(char *const *)a, *(char *const *)b);
  return c ? c : strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcasecmp(s + n - m, suf);
}

static int is_image_name(const char *s) {
  return has_suffix(s, ".jpg") || has_suffix(s, ".jpeg") || has_suffix(s, ".png");
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

// "33,112"
static void thousands(int64_t v, char *out, size_t n) {
  char raw[32], buf[48];
  snprintf(raw, sizeof raw, "%lld", (long long)v);
  int len = (int)strlen(raw), k = 0;
  for (int i = 0; i < len; i++) {
    buf[k++] = raw[i];
    int left = len - 1 - i;
    if (left > 0 && left % 3 == 0 && raw[i] != '-') buf[k++] = ',';
  }
  buf[k] = 0;
  snprintf(out, n, "%s", buf);
}

static int absolute(const char *path, char *out) {
  if (!realpath(path, out)) return masa_error("%s: cannot resolve path (%s)", path, strerror(errno));
  return MASA_OK;
}

static uint64_t fnv1a_str(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
  return h;
}

// ---- resolving a source spec ------------------------------------------------------------------

// Regular *.tar files of a folder, natural order, absolute paths.
static int list_tars(const char *dir, strlist *out) {
  DIR *d = opendir(dir);
  if (!d) return masa_error("%s: cannot open folder (%s)", dir, strerror(errno));
  strlist names = {0};
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.' && has_suffix(de->d_name, ".tar")) strlist_push(&names, de->d_name);
  closedir(d);
  if (names.n > 1) qsort(names.s, (size_t)names.n, sizeof(char *), natural_cmp_p);
  char full[PATH_MAX], abs[PATH_MAX];
  for (int64_t i = 0; i < names.n; i++) {
    snprintf(full, sizeof full, "%s/%s", dir, names.s[i]);
    struct stat st;
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (absolute(full, abs) != MASA_OK) {
      strlist_free(&names);
      return MASA_ERR;
    }
    strlist_push(out, abs);
  }
  strlist_free(&names);
  return MASA_OK;
}

static int folder_has_json(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  int found = 0;
  while (!found && (de = readdir(d))) found = de->d_name[0] != '.' && has_suffix(de->d_name, ".json");
  closedir(d);
  return found;
}

// Fills kind and the absolute source files (shards; the COCO JSON; the SA-1B folder).
static int resolve_spec(const char *spec, source_kind *kind, strlist *files, int *single) {
  *single = !strchr(spec, ',') && !strpbrk(spec, "*?[");
  if (*single) {
    struct stat st;
    char abs[PATH_MAX];
    if (stat(spec, &st) != 0) return masa_error("%s: no such file or folder", spec);
    if (S_ISREG(st.st_mode)) {
      if (has_suffix(spec, ".json")) *kind = SOURCE_COCO;
      else if (has_suffix(spec, ".tar")) *kind = SOURCE_SA1B_TAR;
      else return masa_error("%s: unknown source: expected a .tar shard, a COCO .json file or a folder", spec);
      if (absolute(spec, abs) != MASA_OK) return MASA_ERR;
      strlist_push(files, abs);
      return MASA_OK;
    }
    if (!S_ISDIR(st.st_mode)) return masa_error("%s: not a file or folder", spec);
    if (list_tars(spec, files) != MASA_OK) return MASA_ERR;
    if (files->n) {
      *kind = SOURCE_SA1B_TAR;
      return MASA_OK;
    }
    if (!folder_has_json(spec))
      return masa_error("%s: folder holds no .tar shards and no .json annotation files", spec);
    *kind = SOURCE_SA1B_FOLDER;
    if (absolute(spec, abs) != MASA_OK) return MASA_ERR;
    strlist_push(files, abs);
    return MASA_OK;
  }
  *kind = SOURCE_SA1B_TAR;
  char *copy = mallocCheck(strlen(spec) + 1);
  strcpy(copy, spec);
  int rc = MASA_OK;
  for (char *save = NULL, *el = strtok_r(copy, ",", &save); el && rc == MASA_OK;
       el = strtok_r(NULL, ",", &save)) {
    strlist here = {0};
    struct stat st;
    if (strpbrk(el, "*?[")) {
      glob_t g;
      if (glob(el, 0, NULL, &g) == 0) {
        char abs[PATH_MAX];
        for (size_t i = 0; i < g.gl_pathc && rc == MASA_OK; i++)
          if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode) && has_suffix(g.gl_pathv[i], ".tar")) {
            if ((rc = absolute(g.gl_pathv[i], abs)) == MASA_OK) strlist_push(&here, abs);
          }
        globfree(&g);
      }
      if (here.n > 1) qsort(here.s, (size_t)here.n, sizeof(char *), natural_cmp_p);
    } else if (stat(el, &st) == 0 && S_ISDIR(st.st_mode)) {
      rc = list_tars(el, &here);
    } else if (stat(el, &st) == 0 && S_ISREG(st.st_mode) && has_suffix(el, ".tar")) {
      char abs[PATH_MAX];
      if ((rc = absolute(el, abs)) == MASA_OK) strlist_push(&here, abs);
    } else {
      rc = masa_error("%s: not a .tar shard or a folder of them (in source list '%s')", el, spec);
    }
    if (rc == MASA_OK && here.n == 0) rc = masa_error("%s: matches no .tar shards (in source list '%s')", el, spec);
    for (int64_t i = 0; i < here.n; i++) strlist_push(files, here.s[i]);
    strlist_free(&here);
  }
  free(copy);
  return rc;
}

static void make_index_path(const char *spec, int single, const strlist *files,
                            const dataset_opts *o, char *out, size_t n) {
  char abs_spec[PATH_MAX * 2];
  if (spec[0] == '/') {
    snprintf(abs_spec, sizeof abs_spec, "%s", spec);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(abs_spec, sizeof abs_spec, "%s/%s", cwd, spec);
  }
  uint64_t h = fnv1a_str(abs_spec);
  char stem[PATH_MAX];
  snprintf(stem, sizeof stem, "%s", spec);
  size_t len = strlen(stem);
  while (len > 1 && stem[len - 1] == '/') stem[--len] = 0;
  if (o && o->index_dir) {
    char tag[48];
    int k = 0;
    for (const char *c = base_name(stem); *c && k < 40; c++)
      tag[k++] = isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == '.' ? *c : '_';
    tag[k] = 0;
    snprintf(out, n, "%s/%s-%016llx.masa-index", o->index_dir, tag, (unsigned long long)h);
  } else if (single) {
    snprintf(out, n, "%s.masa-index", stem);
  } else {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", files->s[0]);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    snprintf(out, n, "%s/masa-index-%016llx.masa-index", dir, (unsigned long long)h);
  }
}

// ---- building the index -----------------------------------------------------------------------

typedef struct {
  char *stem;   // name without extension
  char *name;   // full file/member name
  int is_json;
  int64_t off, size;  // tar members
} member_ref;

static int cmp_member(const void *a, const void *b) {
  const member_ref *p = a, *q = b;
  int c = strcmp(p->stem, q->stem);
  if (c) return c;
  if (p->is_json != q->is_json) return q->is_json - p->is_json;  // JSON first
  return (p->off > q->off) - (p->off < q->off);
}

static member_ref member_of(const char *name, int64_t off, int64_t size) {
  member_ref m = {0};
  while (name[0] == '.' && name[1] == '/') name += 2;  // "./sa_1.jpg" as written by `tar -C dir .`
  m.name = mallocCheck(strlen(name) + 1);
  strcpy(m.name, name);
  m.stem = mallocCheck(strlen(name) + 1);
  strcpy(m.stem, name);
  char *dot = strrchr(m.stem, '.'), *slash = strrchr(m.stem, '/');
  if (dot && (!slash || dot > slash)) *dot = 0;
  m.is_json = has_suffix(name, ".json");
  m.off = off;
  m.size = size;
  return m;
}

typedef struct {
  const member_ref *json, *img;
} sample_pair;

static int cmp_pair_name(const void *a, const void *b) {
  const sample_pair *p = a, *q = b;
  int c = natural_cmp(p->json->stem, q->json->stem);
  return c ? c : strcmp(p->json->stem, q->json->stem);
}

static int cmp_pair_offset(const void *a, const void *b) {
  const sample_pair *p = a, *q = b;
  return (p->json->off > q->json->off) - (p->json->off < q->json->off);
}

// Groups members by stem: one pair per JSON (its image or NULL). Returns the number of images
// without JSON in *orphans.
static int64_t pair_members(member_ref *m, int64_t n, sample_pair *out, int64_t *orphans) {
  qsort(m, (size_t)n, sizeof *m, cmp_member);
  int64_t np = 0;
  *orphans = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    const member_ref *json = NULL, *img = NULL;
    for (; j < n && !strcmp(m[j].stem, m[i].stem); j++) {
      if (m[j].is_json && !json) json = &m[j];
      if (!m[j].is_json && !img) img = &m[j];
    }
    if (json) out[np++] = (sample_pair){json, img};
    else (*orphans)++;
    i = j;
  }
  return np;
}

static void members_free(member_ref *m, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    free(m[i].stem);
    free(m[i].name);
  }
  free(m);
}

static int build_folder(dataset_index *x, const char *root) {
  DIR *d = opendir(root);
  if (!d) return masa_error("%s: cannot open folder (%s)", root, strerror(errno));
  int64_t n = 0, cap = 1024;
  member_ref *m = mallocCheck((size_t)cap * sizeof *m);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || de->d_type == DT_DIR) continue;
    if (!has_suffix(de->d_name, ".json") && !is_image_name(de->d_name)) continue;
    if (n == cap) {
      member_ref *nm = mallocCheck((size_t)(2 * cap) * sizeof *nm);
      memcpy(nm, m, (size_t)n * sizeof *nm);
      free(m);
      m = nm;
      cap *= 2;
    }
    m[n++] = member_of(de->d_name, 0, 0);
  }
  closedir(d);
  sample_pair *pairs = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *pairs);
  int64_t orphans, np = pair_members(m, n, pairs, &orphans);
  qsort(pairs, (size_t)np, sizeof *pairs, cmp_pair_name);
  for (int64_t i = 0; i < np; i++) {
    index_entry *e = index_add_entry(x);
    uint64_t name = index_str(x, pairs[i].json->stem);
    uint64_t ann = index_str(x, pairs[i].json->name);
    uint64_t img = pairs[i].img ? index_str(x, pairs[i].img->name) : INDEX_NONE;
    e = &x->entries[x->n_entries - 1];
    e->name = name;
    e->ann = ann;
    e->img = img;
  }
  if (orphans) log_warn("%s: %lld images have no .json annotation file; skipped", root, (long long)orphans);
  free(pairs);
  members_free(m, n);
  return MASA_OK;
}

static int build_tar(dataset_index *x) {
  progress pg;
  progress_begin(&pg, "indexing shards", x->n_files, "shards");
  int64_t orphans_total = 0;
  for (int64_t s = 0; s < x->n_files; s++) {
    const char *path = index_get(x, x->files[s].path);
    tar_member *tm;
    int64_t nt;
    char warn[512];
    if (tar_scan(path, &tm, &nt, warn, sizeof warn) != MASA_OK) return MASA_ERR;
    if (warn[0]) log_warn("%s", warn);
    member_ref *m = mallocCheck((size_t)(nt > 0 ? nt : 1) * sizeof *m);
    int64_t n = 0;
    for (int64_t i = 0; i < nt; i++)
      if (has_suffix(tm[i].name, ".json") || is_image_name(tm[i].name))
        m[n++] = member_of(tm[i].name, tm[i].offset, tm[i].size);
    tar_members_free(tm, nt);
    sample_pair *pairs = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *pairs);
    int64_t orphans, np = pair_members(m, n, pairs, &orphans);
    orphans_total += orphans;
    qsort(pairs, (size_t)np, sizeof *pairs, cmp_pair_offset);
    for (int64_t i = 0; i < np; i++) {
      index_add_entry(x);
      uint64_t name = index_str(x, pairs[i].json->stem);
      uint64_t ann = index_str(x, pairs[i].json->name);
      uint64_t img = pairs[i].img ? index_str(x, pairs[i].img->name) : INDEX_NONE;
      index_entry *e = &x->entries[x->n_entries - 1];
      e->name = name;
      e->ann = ann;
      e->ann_file = (int32_t)s;
      e->ann_off = pairs[i].json->off;
      e->ann_size = pairs[i].json->size;
      e->img = img;
      if (pairs[i].img) {
        e->img_file = (int32_t)s;
        e->img_off = pairs[i].img->off;
        e->img_size = pairs[i].img->size;
      }
    }
    free(pairs);
    members_free(m, n);
    progress_update(&pg, s + 1, NULL);
  }
  progress_end(&pg, x->n_files);
  if (orphans_total)
    log_warn("%lld images in the shards have no .json annotation member; skipped",
             (long long)orphans_total);
  return MASA_OK;
}

// ---- open / close -----------------------------------------------------------------------------

dataset *dataset_open(const char *spec, const dataset_opts *opts) {
  dataset_opts defaults = {0};
  if (!opts) opts = &defaults;
  source_kind kind;
  strlist files = {0};
  int single;
  if (resolve_spec(spec, &kind, &files, &single) != MASA_OK) {
    strlist_free(&files);
    return NULL;
  }
  dataset *d = callocCheck(1, sizeof *d);
  d->load_masks = opts->load_masks;
  make_index_path(spec, single, &files, opts, d->index_path, sizeof d->index_path);
  dataset_index now = {0};
  now.kind = kind;
  for (int64_t i = 0; i < files.n; i++)
    if (index_add_file(&now, files.s[i]) != MASA_OK) {
      index_free(&now);
      strlist_free(&files);
      free(d);
      return NULL;
    }
  dataset_index cached;
  if (index_load(&cached, d->index_path) == MASA_OK && index_same_files(&cached, &now)) {
    d->x = cached;
    d->reused = 1;
    index_free(&now);
    log_debug("%s: reusing index %s", spec, d->index_path);
  } else {
    index_free(&cached);
    double t0 = time_now();
    int rc = kind == SOURCE_COCO ? coco_build_index(files.s[0], &now)
             : kind == SOURCE_SA1B_TAR ? build_tar(&now)
                                       : build_folder(&now, files.s[0]);
    if (rc != MASA_OK) {
      index_free(&now);
      strlist_free(&files);
      free(d);
      return NULL;
    }
    d->x = now;
    log_info("%s: indexed %lld images in %.1f s", spec, (long long)now.n_entries, time_now() - t0);
    if (index_save(&d->x, d->index_path) != MASA_OK) {
      log_warn("%s (the index will be rebuilt next time)", masa_errmsg());
      d->index_path[0] = 0;
    }
  }
  if (kind == SOURCE_COCO) {
    char root[PATH_MAX];
    if (opts->image_root) {
      snprintf(root, sizeof root, "%s", opts->image_root);
    } else {
      snprintf(root, sizeof root, "%s", files.s[0]);
      char *slash = strrchr(root, '/');
      if (slash) *slash = 0;
    }
    d->image_root = mallocCheck(strlen(root) + 1);
    strcpy(d->image_root, root);
  }
  char count[48];
  thousands(d->x.n_entries, count, sizeof count);
  if (kind == SOURCE_SA1B_TAR) {
    char nf[48];
    thousands(d->x.n_files, nf, sizeof nf);
    snprintf(d->desc, sizeof d->desc, "SA-1B tar shards: %s file%s, %s images", nf,
             d->x.n_files == 1 ? "" : "s", count);
  } else if (kind == SOURCE_SA1B_FOLDER) {
    snprintf(d->desc, sizeof d->desc, "SA-1B folder %s: %s images", spec, count);
  } else {
    char na[48];
    thousands(d->x.n_anns, na, sizeof na);
    snprintf(d->desc, sizeof d->desc, "COCO JSON %s: %s images, %s annotations", spec, count, na);
  }
  strlist_free(&files);
  return d;
}

void dataset_close(dataset *d) {
  if (!d) return;
  index_free(&d->x);
  free(d->image_root);
  free(d);
}

int64_t dataset_size(const dataset *d) { return d->x.n_entries; }
const char *dataset_describe(const dataset *d) { return d->desc; }
int dataset_index_reused(const dataset *d) { return d->reused; }
const char *dataset_index_path(const dataset *d) { return d->index_path; }

// ---- loading ----------------------------------------------------------------------------------

void raw_sample_free(raw_sample *s) {
  free(s->jpeg);
  annotations_free(s->anns, s->n_anns);
  memset(s, 0, sizeof *s);
}

// Reads a plain file (folder, COCO) or a tar member.
static int read_part(const dataset *d, int32_t file, const char *name, int64_t off, int64_t size,
                     const char *root, uint8_t **buf, size_t *n, char *what, size_t what_size) {
  if (file >= 0) {
    snprintf(what, what_size, "%s:%s", base_name(index_get(&d->x, d->x.files[file].path)), name);
    *n = (size_t)size;
    return tar_read_at(index_get(&d->x, d->x.files[file].path), off, size, buf, what);
  }
  snprintf(what, what_size, "%s/%s", root, name);
  return file_read_all(what, buf, n);
}

// Image bytes present, complete and of the size the annotations say.
static int check_image(const uint8_t *buf, size_t n, int h, int w, const char *what) {
  int ih, iw;
  if (image_check_complete(buf, n, what) != MASA_OK) return MASA_ERR;
  if (image_probe(buf, n, &ih, &iw, what) != MASA_OK) return MASA_ERR;
  if (ih != h || iw != w)
    return masa_error("%s: image is %d x %d (h x w) but its annotations say %d x %d", what, ih, iw, h, w);
  return MASA_OK;
}

static int load_sa1b(dataset *d, const index_entry *e, raw_sample *out) {
  const char *root = index_get(&d->x, d->x.files[0].path);
  char what[PATH_MAX + 64], iwhat[PATH_MAX + 64];
  uint8_t *text;
  size_t n;
  if (read_part(d, e->ann_file, index_get(&d->x, e->ann), e->ann_off, e->ann_size, root, &text, &n,
                what, sizeof what) != MASA_OK)
    return MASA_ERR;
  int rc = sa1b_parse((const char *)text, n, d->load_masks, what, &out->h, &out->w, &out->anns,
                      &out->n_anns, &out->n_dropped);
  free(text);
  if (rc != MASA_OK) return MASA_ERR;
  if (e->img == INDEX_NONE)
    return masa_error("%s: image not found (no %s.jpg, .jpeg or .png %s)", what,
                      base_name(index_get(&d->x, e->name)),
                      e->ann_file >= 0 ? "member in the shard" : "next to it");
  if (read_part(d, e->img_file, index_get(&d->x, e->img), e->img_off, e->img_size, root, &out->jpeg,
                &out->jpeg_size, iwhat, sizeof iwhat) != MASA_OK)
    return MASA_ERR;
  return check_image(out->jpeg, out->jpeg_size, out->h, out->w, iwhat);
}

static int load_coco(dataset *d, const index_entry *e, raw_sample *out) {
  if (e->error != INDEX_NONE) return masa_error("%s", index_get(&d->x, e->error));
  out->h = e->h;
  out->w = e->w;
  out->anns = callocCheck((size_t)(e->n_anns > 0 ? e->n_anns : 1), sizeof(annotation));
  char what[PATH_MAX + 64];
  for (int64_t i = 0; i < e->n_anns; i++) {
    const index_ann *ia = &d->x.anns[e->first_ann + i];
    annotation an = {0};
    an.id = ia->id;
    memcpy(an.bbox, ia->bbox, sizeof an.bbox);
    int empty = 0;
    if (ia->counts != INDEX_NONE) {
      snprintf(what, sizeof what, "%s: annotation id %lld", index_get(&d->x, e->name), (long long)an.id);
      if (rle_from_string(index_get(&d->x, ia->counts), e->h, e->w, &an.mask, what) != MASA_OK)
        return MASA_ERR;
      empty = rle_area(&an.mask) == 0;
      if (d->load_masks && !empty) an.has_mask = 1;
      else rle_free(&an.mask);
    }
    if (empty || !(an.bbox[2] >= 1 && an.bbox[3] >= 1)) {
      if (an.has_mask) rle_free(&an.mask);
      out->n_dropped++;
      continue;
    }
    out->anns[out->n_anns++] = an;
  }
  char path[PATH_MAX + 64];
  if (read_part(d, -1, index_get(&d->x, e->img), 0, 0, d->image_root, &out->jpeg, &out->jpeg_size,
                path, sizeof path) != MASA_OK)
    return MASA_ERR;
  return check_image(out->jpeg, out->jpeg_size, out->h, out->w, path);
}

int dataset_load(dataset *d, int64_t idx, raw_sample *out) {
  memset(out, 0, sizeof *out);
  if (idx < 0 || idx >= d->x.n_entries)
    return masa_error("dataset_load: index %lld out of range [0, %lld)", (long long)idx,
                      (long long)d->x.n_entries);
  const index_entry *e = &d->x.entries[idx];
  out->index = idx;
  snprintf(out->name, sizeof out->name, "%s", index_get(&d->x, e->name));
  int rc = d->x.kind == SOURCE_COCO ? load_coco(d, e, out) : load_sa1b(d, e, out);
  if (rc != MASA_OK) {
    raw_sample_free(out);
    return MASA_ERR;
  }
  return MASA_OK;
}
