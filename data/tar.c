// Tar archives (tar.h). Header layout (POSIX.1-1988 ustar, byte offsets): name 0 (100), mode 100,
// uid 108, gid 116, size 124 (12, octal or GNU base-256), mtime 136 (12), chksum 148 (8),
// typeflag 156, linkname 157 (100), magic 257 ("ustar"), version 263, uname 265, gname 297,
// devmajor 329, devminor 337, prefix 345 (155).
#include "data/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/error.h"

#define BLOCK 512

static int64_t round_up(int64_t n) { return (n + BLOCK - 1) / BLOCK * BLOCK; }

// Octal field (leading spaces, terminated by NUL or space), or GNU base-256 when the top bit of
// the first byte is set. -1 when malformed.
static int64_t parse_number(const uint8_t *p, int len) {
  if (p[0] & 0x80) {
    if (p[0] & 0x40) return -1;  // negative
    int64_t v = p[0] & 0x3f;
    for (int i = 1; i < len; i++) {
      if (v > (INT64_MAX >> 8)) return -1;
      v = (v << 8) | p[i];
    }
    return v;
  }
  int i = 0;
  while (i < len && p[i] == ' ') i++;
  int64_t v = 0;
  int digits = 0;
  for (; i < len && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
    if (v > (INT64_MAX >> 3)) return -1;
    v = v * 8 + (p[i] - '0');
  }
  if (i < len && p[i] != 0 && p[i] != ' ') return -1;
  return digits ? v : -1;
}

static int checksum_ok(const uint8_t *h) {
  int64_t want = parse_number(h + 148, 8);
  int64_t su = 0, ss = 0;
  for (int i = 0; i < BLOCK; i++) {
    uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
    su += c;
    ss += (signed char)c;  // some old writers summed signed chars
  }
  return want >= 0 && (want == su || want == ss);
}

static char *field_string(const uint8_t *p, int len) {
  int n = 0;
  while (n < len && p[n]) n++;
  char *s = mallocCheck((size_t)n + 1);
  memcpy(s, p, (size_t)n);
  s[n] = 0;
  return s;
}

static int read_full(int fd, void *buf, size_t n, int64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + (int64_t)got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)got == 0 && r == 0 ? 0 : -1;
    got += (size_t)r;
  }
  return 1;
}

// pax extended header: records "LEN key=value\n". Picks up path and size.
static void parse_pax(const char *d, int64_t n, char **path, int64_t *size) {
  int64_t i = 0;
  while (i < n) {
    int64_t len = 0, j = i;
    while (j < n && d[j] >= '0' && d[j] <= '9') len = len * 10 + (d[j++] - '0');
    if (j >= n || d[j] != ' ' || len <= 0 || i + len > n) return;
    const char *kv = d + j + 1, *end = d + i + len - 1;  // end points at '\n'
    const char *eq = memchr(kv, '=', (size_t)(end - kv));
    if (eq) {
      size_t klen = (size_t)(eq - kv);
      if (klen == 4 && !memcmp(kv, "path", 4)) {
        free(*path);
        *path = mallocCheck((size_t)(end - eq));
        memcpy(*path, eq + 1, (size_t)(end - eq - 1));
        (*path)[end - eq - 1] = 0;
      } else if (klen == 4 && !memcmp(kv, "size", 4)) {
        *size = strtoll(eq + 1, NULL, 10);
      }
    }
    i += len;
  }
}

int tar_scan(const char *path, tar_member **members, int64_t *n, char *warning, size_t warning_size) {
  *members = NULL;
  *n = 0;
  if (warning && warning_size) warning[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return masa_error("%s: cannot open tar archive (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return masa_error("%s: cannot stat tar archive (%s)", path, strerror(errno));
  }
  const int64_t file_size = st.st_size;
  int64_t cap = 0, count = 0, pos = 0;
  tar_member *list = NULL;
  char *long_name = NULL, *pax_path = NULL;
  int64_t pax_size = -1;
  uint8_t h[BLOCK];
  char warn[512] = {0};
  for (;;) {
    int r = read_full(fd, h, BLOCK, pos);
    if (r == 0) break;  // clean end without end-of-archive blocks
    if (r < 0) {
      snprintf(warn, sizeof warn, "%s: archive ends inside the header at byte %lld (truncated)",
               path, (long long)pos);
      break;
    }
    int zero = 1;
    for (int i = 0; i < BLOCK && zero; i++) zero = h[i] == 0;
    if (zero) break;  // end-of-archive marker
    if (!checksum_ok(h)) {
      snprintf(warn, sizeof warn, "%s: damaged tar header at byte %lld (checksum mismatch); "
               "members after it are ignored", path, (long long)pos);
      break;
    }
    int64_t size = parse_number(h + 124, 12);
    if (size < 0) {
      snprintf(warn, sizeof warn, "%s: tar header at byte %lld has an invalid size field", path,
               (long long)pos);
      break;
    }
    char type = (char)h[156];
    int64_t data = pos + BLOCK;
    if (type == 'K' || type == 'g') {  // long link name, global pax header: nothing we use
      pos = data + round_up(size);
      if (pos > file_size) break;
      continue;
    }
    if (type == 'L' || type == 'x') {  // metadata for the next header
      if (size > (1 << 20) || data + size > file_size) {
        snprintf(warn, sizeof warn, "%s: oversized or truncated %s record at byte %lld", path,
                 type == 'L' ? "long-name" : "pax", (long long)pos);
        break;
      }
      char *d = mallocCheck((size_t)size + 1);
      if (read_full(fd, d, (size_t)size, data) != 1) {
        free(d);
        snprintf(warn, sizeof warn, "%s: cannot read the record at byte %lld", path, (long long)pos);
        break;
      }
      d[size] = 0;
      if (type == 'L') {
        free(long_name);
        long_name = d;
      } else {
        parse_pax(d, size, &pax_path, &pax_size);
        free(d);
      }
    } else {
      if (pax_size >= 0) size = pax_size;
      if (type == '0' || type == '\0' || type == '7') {
        char *name;
        if (pax_path) {
          name = pax_path;
          pax_path = NULL;
        } else if (long_name) {
          name = long_name;
          long_name = NULL;
        } else if (!memcmp(h + 257, "ustar", 5) && h[345]) {
          char *prefix = field_string(h + 345, 155), *base = field_string(h, 100);
          name = mallocCheck(strlen(prefix) + strlen(base) + 2);
          sprintf(name, "%s/%s", prefix, base);
          free(prefix);
          free(base);
        } else {
          name = field_string(h, 100);
        }
        if (count == cap) {
          cap = cap ? 2 * cap : 64;
          tar_member *nl = mallocCheck((size_t)cap * sizeof *nl);
          if (count) memcpy(nl, list, (size_t)count * sizeof *nl);
          free(list);
          list = nl;
        }
        list[count++] = (tar_member){name, data, size};
      }
      free(long_name);
      free(pax_path);
      long_name = pax_path = NULL;
      pax_size = -1;
    }
    pos = data + round_up(size);
    if (pos > file_size) {
      if (!warn[0] && type != 'L' && type != 'x')
        snprintf(warn, sizeof warn, "%s: the last member ends past the end of the archive "
                 "(truncated at byte %lld)", path, (long long)file_size);
      break;
    }
  }
  free(long_name);
  free(pax_path);
  close(fd);
  if (warning && warning_size) snprintf(warning, warning_size, "%s", warn);
  *members = list;
  *n = count;
  return MASA_OK;
}

void tar_members_free(tar_member *m, int64_t n) {
  for (int64_t i = 0; i < n; i++) free(m[i].name);
  free(m);
}

int tar_read_at(const char *path, int64_t offset, int64_t size, uint8_t **buf, const char *what) {
  *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return masa_error("%s: cannot open %s (%s)", what, path, strerror(errno));
  // A damaged size field must not turn into a huge allocation: check against the file first.
  struct stat st;
  if (fstat(fd, &st) != 0 || offset < 0 || size < 0 || offset > st.st_size ||
      size > st.st_size - offset) {
    close(fd);
    return masa_error("%s: member truncated: it needs %lld bytes at offset %lld, the archive has %lld",
                      what, (long long)size, (long long)offset, (long long)st.st_size);
  }
  uint8_t *b = mallocCheck((size_t)size + 1);
  size_t got = 0;
  while (got < (size_t)size) {
    ssize_t r = pread(fd, b + got, (size_t)size - got, (off_t)(offset + (int64_t)got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = errno;
      close(fd);
      free(b);
      if (r == 0)
        return masa_error("%s: member truncated: the archive ends after %zu of its %lld bytes",
                          what, got, (long long)size);
      return masa_error("%s: read failed (%s)", what, strerror(e));
    }
    got += (size_t)r;
  }
  close(fd);
  b[size] = 0;
  *buf = b;
  return MASA_OK;
}

// ---- writer ---------------------------------------------------------------------------------

static void put_octal(uint8_t *p, int len, int64_t v) {
  // len-1 digits and a NUL terminator, zero padded.
  for (int i = len - 2; i >= 0; i--) {
    p[i] = (uint8_t)('0' + (v & 7));
    v >>= 3;
  }
  p[len - 1] = 0;
}

static int write_header(tar_writer *w, const char *name, int64_t size, char type) {
  uint8_t h[BLOCK];
  memset(h, 0, sizeof h);
  size_t nl = strlen(name);
  memcpy(h, name, nl < 100 ? nl : 100);
  put_octal(h + 100, 8, 0644);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, 0);  // mtime fixed: archives are a pure function of their content
  h[156] = (uint8_t)type;
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  int64_t sum = 0;
  for (int i = 0; i < BLOCK; i++) sum += h[i];
  put_octal(h + 148, 7, sum);
  h[155] = ' ';
  if (fwrite(h, 1, BLOCK, w->f) != BLOCK) return masa_error("%s: write failed (%s)", w->path, strerror(errno));
  return MASA_OK;
}

static int write_padded(tar_writer *w, const void *data, size_t n) {
  static const uint8_t zeros[BLOCK];
  if (n && fwrite(data, 1, n, w->f) != n) return masa_error("%s: write failed (%s)", w->path, strerror(errno));
  size_t pad = (size_t)(round_up((int64_t)n) - (int64_t)n);
  if (pad && fwrite(zeros, 1, pad, w->f) != pad)
    return masa_error("%s: write failed (%s)", w->path, strerror(errno));
  return MASA_OK;
}

int tar_writer_open(tar_writer *w, const char *path) {
  snprintf(w->path, sizeof w->path, "%s", path);
  w->f = fopen(path, "wb");
  if (!w->f) return masa_error("%s: cannot create tar archive (%s)", path, strerror(errno));
  return MASA_OK;
}

int tar_writer_add(tar_writer *w, const char *name, const void *data, size_t n) {
  size_t nl = strlen(name);
  if (nl >= 100) {  // GNU long name record, then a header with the truncated name
    if (write_header(w, "././@LongLink", (int64_t)nl + 1, 'L') != MASA_OK) return MASA_ERR;
    if (write_padded(w, name, nl + 1) != MASA_OK) return MASA_ERR;
  }
  if (write_header(w, name, (int64_t)n, '0') != MASA_OK) return MASA_ERR;
  return write_padded(w, data, n);
}

int tar_writer_close(tar_writer *w) {
  static const uint8_t zeros[2 * BLOCK];
  int bad = fwrite(zeros, 1, sizeof zeros, w->f) != sizeof zeros;
  if (fclose(w->f) != 0) bad = 1;
  w->f = NULL;
  if (bad) return masa_error("%s: write failed (%s)", w->path, strerror(errno));
  return MASA_OK;
}
