#include "core/check.h"

#include <hdf5.h>

void masa_die(const char *file, int line, const char *call, const char *lib, const char *msg) {
  fflush(stdout);
  fprintf(stderr, "error: %s:%d: %s: `%s`: %s\n", file, line, lib, call, msg);
  if (strcmp(lib, "HDF5") == 0) H5Eprint2(H5E_DEFAULT, stderr);
  exit(MASA_EXIT_FAILURE);
}

void *masa_malloc_checked(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    char msg[96];
    snprintf(msg, sizeof msg, "out of memory allocating %zu bytes", n);
    masa_die(file, line, "malloc", "libc", msg);
  }
  return p;
}

void *masa_calloc_checked(size_t n, size_t sz, const char *file, int line) {
  void *p = calloc(n ? n : 1, sz ? sz : 1);
  if (!p) {
    char msg[96];
    snprintf(msg, sizeof msg, "out of memory allocating %zu x %zu bytes", n, sz);
    masa_die(file, line, "calloc", "libc", msg);
  }
  return p;
}

FILE *masa_fopen_checked(const char *path, const char *mode, const char *file, int line) {
  FILE *f = fopen(path, mode);
  if (!f) {
    char msg[1200];
    snprintf(msg, sizeof msg, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    masa_die(file, line, "fopen", "libc", msg);
  }
  return f;
}

void masa_fread_checked(void *p, size_t sz, size_t n, FILE *f, const char *file, int line) {
  size_t got = fread(p, sz, n, f);
  if (got != n) {
    char msg[128];
    snprintf(msg, sizeof msg, "read %zu of %zu items (%s)", got, n,
             feof(f) ? "unexpected end of file" : strerror(errno));
    masa_die(file, line, "fread", "libc", msg);
  }
}

void masa_fwrite_checked(const void *p, size_t sz, size_t n, FILE *f, const char *file, int line) {
  size_t put = fwrite(p, sz, n, f);
  if (put != n) {
    char msg[128];
    snprintf(msg, sizeof msg, "wrote %zu of %zu items: %s", put, n, strerror(errno));
    masa_die(file, line, "fwrite", "libc", msg);
  }
}

void masa_fclose_checked(FILE *f, const char *file, int line) {
  if (fclose(f) != 0) masa_die(file, line, "fclose", "libc", strerror(errno));
}
