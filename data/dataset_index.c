// Dataset index container and its cache file (dataset_index.h). File layout:
//   "MASAIDX\0", u32 version, u32 kind, u32 0x01020304 (byte order), u32 sizeof(index_entry),
//   u32 sizeof(index_ann), u32 0, i64 n_files, n_entries, n_anns, pool_size,
//   index_file[n_files], index_entry[n_entries], index_ann[n_anns], pool bytes,
//   u64 FNV-1a of everything before it.
#include "data/dataset_index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"
#include "data/image.h"

#define INDEX_VERSION 1u

static void *grow(void *p, int64_t *cap, int64_t need, size_t elem) {
  if (need <= *cap) return p;
  int64_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *np = realloc(p, (size_t)c * elem);
  if (!np) masa_die(__FILE__, __LINE__, "realloc()", "libc", "out of memory");
  *cap = c;
  return np;
}

void index_free(dataset_index *x) {
  free(x->files);
  free(x->entries);
  free(x->anns);
  free(x->pool);
  memset(x, 0, sizeof *x);
}

uint64_t index_str(dataset_index *x, const char *s) {
  size_t n = strlen(s) + 1;
  x->pool = grow(x->pool, &x->cap_pool, x->pool_size + (int64_t)n, 1);
  uint64_t off = (uint64_t)x->pool_size;
  memcpy(x->pool + off, s, n);
  x->pool_size += (int64_t)n;
  return off;
}

int index_add_file(dataset_index *x, const char *abs_path) {
  struct stat st;
  if (stat(abs_path, &st) != 0) return masa_error("%s: cannot stat (%s)", abs_path, strerror(errno));
  x->files = grow(x->files, &x->cap_files, x->n_files + 1, sizeof *x->files);
  index_file *f = &x->files[x->n_files++];
  f->path = index_str(x, abs_path);
  f->size = st.st_size;
  f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  return MASA_OK;
}

index_entry *index_add_entry(dataset_index *x) {
  x->entries = grow(x->entries, &x->cap_entries, x->n_entries + 1, sizeof *x->entries);
  index_entry *e = &x->entries[x->n_entries++];
  memset(e, 0, sizeof *e);
  e->name = e->img = e->ann = e->error = INDEX_NONE;
  e->img_file = e->ann_file = -1;
  return e;
}

index_ann *index_add_ann(dataset_index *x) {
  x->anns = grow(x->anns, &x->cap_anns, x->n_anns + 1, sizeof *x->anns);
  index_ann *a = &x->anns[x->n_anns++];
  memset(a, 0, sizeof *a);
  a->counts = INDEX_NONE;
  return a;
}

int index_same_files(const dataset_index *a, const dataset_index *b) {
  if (a->kind != b->kind || a->n_files != b->n_files) return 0;
  for (int64_t i = 0; i < a->n_files; i++) {
    const index_file *p = &a->files[i], *q = &b->files[i];
    if (p->size != q->size || p->mtime_ns != q->mtime_ns ||
        strcmp(index_get(a, p->path), index_get(b, q->path)))
      return 0;
  }
  return 1;
}

static uint64_t fnv1a(const uint8_t *p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

typedef struct {
  uint32_t version, kind, order, entry_size, ann_size, zero;
  int64_t n_files, n_entries, n_anns, pool_size;
} index_header;

int index_save(const dataset_index *x, const char *path) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return masa_error("%s: cannot create index file (%s)", tmp, strerror(errno));
  index_header hd = {INDEX_VERSION, x->kind, 0x01020304u, sizeof(index_entry), sizeof(index_ann), 0,
                     x->n_files, x->n_entries, x->n_anns, x->pool_size};
  struct {
    const void *p;
    size_t n;
  } parts[] = {{"MASAIDX", 8},
               {&hd, sizeof hd},
               {x->files, (size_t)x->n_files * sizeof(index_file)},
               {x->entries, (size_t)x->n_entries * sizeof(index_entry)},
               {x->anns, (size_t)x->n_anns * sizeof(index_ann)},
               {x->pool, (size_t)x->pool_size}};
  uint64_t h = 0xcbf29ce484222325ULL;
  int bad = 0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (!parts[i].n) continue;
    h = fnv1a(parts[i].p, parts[i].n, h);
    if (fwrite(parts[i].p, 1, parts[i].n, f) != parts[i].n) bad = 1;
  }
  if (fwrite(&h, sizeof h, 1, f) != 1) bad = 1;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return masa_error("%s: cannot write index file (%s)", path, strerror(e));
  }
  return MASA_OK;
}

int index_load(dataset_index *x, const char *path) {
  memset(x, 0, sizeof *x);
  uint8_t *buf;
  size_t n;
  if (file_read_all(path, &buf, &n) != MASA_OK) return MASA_ERR;
  index_header hd;
  size_t head = 8 + sizeof hd;
  int ok = n >= head + 8 && !memcmp(buf, "MASAIDX", 8);
  if (ok) {
    memcpy(&hd, buf + 8, sizeof hd);
    ok = hd.version == INDEX_VERSION && hd.order == 0x01020304u &&
         hd.entry_size == sizeof(index_entry) && hd.ann_size == sizeof(index_ann) &&
         hd.n_files >= 0 && hd.n_entries >= 0 && hd.n_anns >= 0 && hd.pool_size >= 0 &&
         hd.n_files < (1LL << 40) && hd.n_entries < (1LL << 40) && hd.n_anns < (1LL << 40) &&
         hd.pool_size < (1LL << 50);
  }
  size_t sz_files = 0, sz_entries = 0, sz_anns = 0;
  if (ok) {
    sz_files = (size_t)hd.n_files * sizeof(index_file);
    sz_entries = (size_t)hd.n_entries * sizeof(index_entry);
    sz_anns = (size_t)hd.n_anns * sizeof(index_ann);
    ok = n == head + sz_files + sz_entries + sz_anns + (size_t)hd.pool_size + 8;
  }
  if (ok) {
    uint64_t want, got = fnv1a(buf, n - 8, 0xcbf29ce484222325ULL);
    memcpy(&want, buf + n - 8, 8);
    ok = want == got && (hd.pool_size == 0 || buf[n - 9] == 0);
  }
  if (!ok) {
    free(buf);
    return masa_error("%s: index file is damaged or from another version", path);
  }
  const uint8_t *p = buf + head;
  x->kind = hd.kind;
  x->n_files = x->cap_files = hd.n_files;
  x->n_entries = x->cap_entries = hd.n_entries;
  x->n_anns = x->cap_anns = hd.n_anns;
  x->pool_size = x->cap_pool = hd.pool_size;
  x->files = mallocCheck(sz_files + 1);
  x->entries = mallocCheck(sz_entries + 1);
  x->anns = mallocCheck(sz_anns + 1);
  x->pool = mallocCheck((size_t)hd.pool_size + 1);
  memcpy(x->files, p, sz_files);
  p += sz_files;
  memcpy(x->entries, p, sz_entries);
  p += sz_entries;
  memcpy(x->anns, p, sz_anns);
  p += sz_anns;
  memcpy(x->pool, p, (size_t)hd.pool_size);
  free(buf);
  // Offsets into the pool and files[] must be in range before anyone follows them.
  int64_t ps = x->pool_size;
#define POOL_OK(o) ((o) == INDEX_NONE || (o) < (uint64_t)ps)
  for (int64_t i = 0; i < x->n_files && ok; i++) ok = x->files[i].path < (uint64_t)ps;
  for (int64_t i = 0; i < x->n_entries && ok; i++) {
    const index_entry *e = &x->entries[i];
    ok = POOL_OK(e->name) && POOL_OK(e->img) && POOL_OK(e->ann) && POOL_OK(e->error) &&
         e->img_file >= -1 && e->img_file < x->n_files && e->ann_file >= -1 &&
         e->ann_file < x->n_files && e->first_ann >= 0 && e->n_anns >= 0 &&
         e->first_ann + e->n_anns <= x->n_anns;
  }
  for (int64_t i = 0; i < x->n_anns && ok; i++) ok = POOL_OK(x->anns[i].counts);
#undef POOL_OK
  if (!ok) {
    index_free(x);
    return masa_error("%s: index file is inconsistent", path);
  }
  return MASA_OK;
}
