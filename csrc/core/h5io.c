#include "core/h5io.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"

// HDF5 1.10 (Debian 12) and 1.12+ name a few calls differently.
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t link_info;
#define link_iterate H5Literate2
#define file_is_hdf5(p) H5Fis_accessible((p), H5P_DEFAULT)
#else
typedef H5L_info_t link_info;
#define link_iterate H5Literate
#define file_is_hdf5(p) H5Fis_hdf5(p)
#endif

struct h5file {
  hid_t id;
  char path[1024];
};

// HDF5 prints its own error stack by default; we report through masa_error instead.
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// Innermost HDF5 error description, for messages such as "truncated file".
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *buf = data;
  if (buf[0] == 0 && e->desc) snprintf(buf, 256, "%s", e->desc);
  return 0;
}

static const char *h5_reason(char *buf) {
  buf[0] = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, buf);
  if (!buf[0]) snprintf(buf, 256, "HDF5 error");
  return buf;
}

h5file *h5_open_read(const char *path) {
  h5_quiet();
  if (access(path, R_OK) != 0) {
    masa_error("%s: cannot read file (missing or no permission)", path);
    return NULL;
  }
  htri_t is = file_is_hdf5(path);
  if (is <= 0) {
    char r[256];
    masa_error("%s: not a readable HDF5 file (%s)", path, is < 0 ? h5_reason(r) : "bad signature");
    return NULL;
  }
  hid_t id = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) {
    char r[256];
    masa_error("%s: cannot open HDF5 file: %s (truncated or corrupt?)", path, h5_reason(r));
    return NULL;
  }
  h5file *f = callocCheck(1, sizeof *f);
  f->id = id;
  snprintf(f->path, sizeof f->path, "%s", path);
  return f;
}

h5file *h5_create(const char *path) {
  h5_quiet();
  hid_t id = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) {
    char r[256];
    masa_error("%s: cannot create HDF5 file: %s", path, h5_reason(r));
    return NULL;
  }
  h5file *f = callocCheck(1, sizeof *f);
  f->id = id;
  snprintf(f->path, sizeof f->path, "%s", path);
  return f;
}

void h5_close(h5file *f) {
  if (!f) return;
  H5Fclose(f->id);
  free(f);
}

const char *h5_path(const h5file *f) { return f->path; }

int h5_has(h5file *f, const char *name) {
  // H5Lexists fails if an intermediate group is missing; check each prefix.
  char buf[512];
  snprintf(buf, sizeof buf, "%s", name);
  for (char *p = buf; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (buf[0] && H5Lexists(f->id, buf, H5P_DEFAULT) <= 0) return 0;
    *p = '/';
  }
  return H5Lexists(f->id, buf, H5P_DEFAULT) > 0;
}

typedef struct {
  int target, seen;
  char *buf;
  int bufsize;
} iter_ctx;

static herr_t count_cb(hid_t g, const char *name, const link_info *info, void *data) {
  (void)g;
  (void)info;
  iter_ctx *c = data;
  if (c->seen == c->target && c->buf) snprintf(c->buf, (size_t)c->bufsize, "%s", name);
  c->seen++;
  return 0;
}

int h5_count(h5file *f) {
  iter_ctx c = {-1, 0, NULL, 0};
  hsize_t idx = 0;
  if (link_iterate(f->id, H5_INDEX_NAME, H5_ITER_INC, &idx, count_cb, &c) < 0) return 0;
  return c.seen;
}

int h5_name_at(h5file *f, int i, char *buf, int bufsize) {
  iter_ctx c = {i, 0, buf, bufsize};
  buf[0] = 0;
  hsize_t idx = 0;
  if (link_iterate(f->id, H5_INDEX_NAME, H5_ITER_INC, &idx, count_cb, &c) < 0 || !buf[0])
    return masa_error("%s: no dataset number %d", f->path, i);
  return MASA_OK;
}

// Opens a dataset and checks its element class/size. Returns <0 with masa_error set.
static hid_t open_typed(h5file *f, const char *name, H5T_class_t cls, size_t size,
                        const char *type_name) {
  if (!h5_has(f, name)) return masa_error("%s: missing dataset '%s'", f->path, name);
  hid_t d = H5Dopen2(f->id, name, H5P_DEFAULT);
  if (d < 0) {
    char r[256];
    return masa_error("%s: cannot open dataset '%s': %s", f->path, name, h5_reason(r));
  }
  hid_t t = H5Dget_type(d);
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  H5Tclose(t);
  if (c != cls || sz != size) {
    H5Dclose(d);
    const char *cn = c == H5T_FLOAT ? "float" : c == H5T_INTEGER ? "integer" : "non-numeric";
    return masa_error("%s: dataset '%s' has dtype %s%zu, expected %s", f->path, name, cn, 8 * sz,
                      type_name);
  }
  return d;
}

static int get_shape(h5file *f, hid_t d, const char *name, int *ndim, int64_t *shape) {
  hid_t s = H5Dget_space(d);
  int nd = H5Sget_simple_extent_ndims(s);
  if (nd < 0 || nd > TENSOR_MAX_DIMS) {
    H5Sclose(s);
    return masa_error("%s: dataset '%s' has %d dims (at most %d supported)", f->path, name, nd,
                      TENSOR_MAX_DIMS);
  }
  hsize_t dims[TENSOR_MAX_DIMS];
  H5Sget_simple_extent_dims(s, dims, NULL);
  H5Sclose(s);
  *ndim = nd;
  for (int i = 0; i < nd; i++) shape[i] = (int64_t)dims[i];
  return MASA_OK;
}

int h5_shape(h5file *f, const char *name, int *ndim, int64_t shape[TENSOR_MAX_DIMS]) {
  hid_t d = open_typed(f, name, H5T_FLOAT, 4, "float32");
  if (d < 0) return MASA_ERR;
  int rc = get_shape(f, d, name, ndim, shape);
  H5Dclose(d);
  return rc;
}

static int read_checked(h5file *f, const char *name, hid_t d, hid_t memtype, void *dst) {
  if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
    char r[256];
    return masa_error("%s: reading dataset '%s' failed: %s (truncated file?)", f->path, name,
                      h5_reason(r));
  }
  return MASA_OK;
}

int h5_read(h5file *f, const char *name, float *dst, int ndim, const int64_t *shape) {
  hid_t d = open_typed(f, name, H5T_FLOAT, 4, "float32");
  if (d < 0) return MASA_ERR;
  int nd;
  int64_t sh[TENSOR_MAX_DIMS];
  int rc = get_shape(f, d, name, &nd, sh);
  if (rc == MASA_OK) {
    int same = nd == ndim;
    for (int i = 0; same && i < nd; i++) same = sh[i] == shape[i];
    if (!same) {
      char a[128], b[128];
      rc = masa_error("%s: dataset '%s' has shape %s, expected %s", f->path, name,
                      shape_str(a, sizeof a, nd, sh), shape_str(b, sizeof b, ndim, shape));
    }
  }
  if (rc == MASA_OK && shape_numel(nd, sh) > 0) rc = read_checked(f, name, d, H5T_NATIVE_FLOAT, dst);
  H5Dclose(d);
  return rc;
}

int h5_read_tensor(h5file *f, const char *name, tensor *out) {
  int nd;
  int64_t sh[TENSOR_MAX_DIMS];
  if (h5_shape(f, name, &nd, sh) != MASA_OK) return MASA_ERR;
  *out = tensor_alloc(nd, sh);
  if (h5_read(f, name, out->data, nd, sh) != MASA_OK) {
    tensor_free(out);
    return MASA_ERR;
  }
  return MASA_OK;
}

int h5_read_i64(h5file *f, const char *name, int64_t **out, int *ndim,
                int64_t shape[TENSOR_MAX_DIMS]) {
  hid_t d = open_typed(f, name, H5T_INTEGER, 8, "int64");
  if (d < 0) return MASA_ERR;
  int rc = get_shape(f, d, name, ndim, shape);
  if (rc == MASA_OK) {
    *out = mallocCheck((size_t)shape_numel(*ndim, shape) * sizeof(int64_t));
    if (shape_numel(*ndim, shape) > 0) rc = read_checked(f, name, d, H5T_NATIVE_INT64, *out);
    if (rc != MASA_OK) free(*out);
  }
  H5Dclose(d);
  return rc;
}

static int write_any(h5file *f, const char *name, hid_t memtype, hid_t filetype, const void *src,
                     int ndim, const int64_t *shape) {
  hsize_t dims[TENSOR_MAX_DIMS];
  for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
  hid_t s = H5Screate_simple(ndim, dims, NULL);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t d = H5Dcreate2(f->id, name, filetype, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  int rc = MASA_OK;
  char r[256];
  if (d < 0)
    rc = masa_error("%s: cannot create dataset '%s': %s", f->path, name, h5_reason(r));
  else if (shape_numel(ndim, shape) > 0 && H5Dwrite(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, src) < 0)
    rc = masa_error("%s: writing dataset '%s' failed: %s", f->path, name, h5_reason(r));
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  return rc;
}

int h5_write(h5file *f, const char *name, const float *src, int ndim, const int64_t *shape) {
  return write_any(f, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, src, ndim, shape);
}

int h5_write_i64(h5file *f, const char *name, const int64_t *src, int ndim, const int64_t *shape) {
  return write_any(f, name, H5T_NATIVE_INT64, H5T_STD_I64LE, src, ndim, shape);
}

int h5_write_attr_str(h5file *f, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1);
  hid_t s = H5Screate(H5S_SCALAR);
  if (H5Aexists(f->id, name) > 0) H5Adelete(f->id, name);
  hid_t a = H5Acreate2(f->id, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a < 0 || H5Awrite(a, t, value) < 0)
               ? masa_error("%s: cannot write attribute '%s'", f->path, name)
               : MASA_OK;
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  return rc;
}

int h5_read_attr_str(h5file *f, const char *name, char **value) {
  if (H5Aexists(f->id, name) <= 0) return masa_error("%s: missing attribute '%s'", f->path, name);
  hid_t a = H5Aopen(f->id, name, H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  int rc = MASA_OK;
  if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0) {
    rc = masa_error("%s: attribute '%s' is not a fixed-length string", f->path, name);
  } else {
    size_t n = H5Tget_size(t);
    *value = callocCheck(n + 1, 1);
    if (H5Aread(a, t, *value) < 0) {
      free(*value);
      rc = masa_error("%s: cannot read attribute '%s'", f->path, name);
    }
  }
  H5Tclose(t);
  H5Aclose(a);
  return rc;
}

int h5_write_attr_i64(h5file *f, const char *name, int64_t value) {
  hid_t s = H5Screate(H5S_SCALAR);
  if (H5Aexists(f->id, name) > 0) H5Adelete(f->id, name);
  hid_t a = H5Acreate2(f->id, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &value) < 0)
               ? masa_error("%s: cannot write attribute '%s'", f->path, name)
               : MASA_OK;
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  return rc;
}

int h5_read_attr_i64(h5file *f, const char *name, int64_t *value) {
  if (H5Aexists(f->id, name) <= 0) return masa_error("%s: missing attribute '%s'", f->path, name);
  hid_t a = H5Aopen(f->id, name, H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  int rc = H5Tget_class(t) == H5T_INTEGER && H5Aread(a, H5T_NATIVE_INT64, value) >= 0
               ? MASA_OK
               : masa_error("%s: attribute '%s' is not an integer", f->path, name);
  H5Tclose(t);
  H5Aclose(a);
  return rc;
}

// Appends to a bounded message buffer.
static void append(char *buf, size_t cap, size_t *len, const char *fmt, const char *a,
                   const char *b, const char *c) {
  if (*len >= cap) return;
  int k = snprintf(buf + *len, cap - *len, fmt, a, b, c);
  if (k > 0) *len += (size_t)k;
}

int h5_load_params(h5file *f, param_table *t, int strict) {
  char msg[1500];
  size_t len = 0;
  int problems = 0;
  msg[0] = 0;
  for (int i = 0; i < t->count; i++) {
    param_entry *e = &t->entries[i];
    int nd;
    int64_t sh[TENSOR_MAX_DIMS];
    if (!h5_has(f, e->name)) {
      append(msg, sizeof msg, &len, "\n  missing: %s%s%s", e->name, "", "");
      problems++;
      continue;
    }
    if (h5_shape(f, e->name, &nd, sh) != MASA_OK) {
      append(msg, sizeof msg, &len, "\n  %s%s%s", masa_errmsg(), "", "");
      problems++;
      continue;
    }
    int same = nd == e->ndim;
    for (int k = 0; same && k < nd; k++) same = sh[k] == e->shape[k];
    if (!same) {
      char a[128], b[128];
      append(msg, sizeof msg, &len, "\n  shape mismatch: %s is %s, expected %s", e->name,
             shape_str(a, sizeof a, nd, sh), shape_str(b, sizeof b, e->ndim, e->shape));
      problems++;
      continue;
    }
    if (h5_read(f, e->name, param_ptr(t, i), e->ndim, e->shape) != MASA_OK) {
      append(msg, sizeof msg, &len, "\n  %s%s%s", masa_errmsg(), "", "");
      problems++;
    }
  }
  if (strict) {
    int n = h5_count(f);
    for (int i = 0; i < n; i++) {
      char name[512];
      if (h5_name_at(f, i, name, sizeof name) == MASA_OK && param_table_find(t, name) < 0) {
        append(msg, sizeof msg, &len, "\n  unexpected: %s%s%s", name, "", "");
        problems++;
      }
    }
  }
  if (problems)
    return masa_error("%s: %d problem%s loading weights:%s", f->path, problems,
                      problems > 1 ? "s" : "", msg);
  return MASA_OK;
}

int h5_save_params(const char *path, const param_table *t) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  h5file *f = h5_create(tmp);
  if (!f) return MASA_ERR;
  for (int i = 0; i < t->count; i++) {
    const param_entry *e = &t->entries[i];
    if (h5_write(f, e->name, param_ptr(t, i), e->ndim, e->shape) != MASA_OK) {
      h5_close(f);
      unlink(tmp);
      return MASA_ERR;
    }
  }
  if (H5Fflush(f->id, H5F_SCOPE_GLOBAL) < 0) {
    h5_close(f);
    unlink(tmp);
    return masa_error("%s: flush failed", tmp);
  }
  h5_close(f);
  int fd = open(tmp, O_RDONLY);
  if (fd < 0 || fsync(fd) != 0) {
    if (fd >= 0) close(fd);
    unlink(tmp);
    return masa_error("%s: fsync failed", tmp);
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    unlink(tmp);
    return masa_error("%s: cannot rename %s into place", path, tmp);
  }
  return MASA_OK;
}
