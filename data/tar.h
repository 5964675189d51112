// A small tar reader and writer for SA-1B shards: members are located by scanning the 512-byte
// headers and read in place with pread (thread-safe), never extracted.
// Read: POSIX ustar and GNU tar (regular files '0', '\0', '7'; GNU 'L' long names; pax 'x'
// records for path and size; base-256 sizes). Write: ustar with GNU 'L' records for names of 100
// bytes or more; fixed owner, mode and mtime so that the output is a pure function of the input.
#ifndef MASA_TAR_H
#define MASA_TAR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char *name;      // member path inside the archive (malloc'd)
  int64_t offset;  // first data byte
  int64_t size;    // bytes (the data may extend past the end of a truncated archive)
} tar_member;

// Lists the regular-file members of an archive. A damaged header (bad checksum, cut short) ends
// the scan: the members before it are returned and `warning` (if not NULL) receives a message
// naming the archive and the byte offset; otherwise warning[0] = 0. MASA_ERR only when the file
// cannot be read at all.
int tar_scan(const char *path, tar_member **members, int64_t *n, char *warning, size_t warning_size);
void tar_members_free(tar_member *m, int64_t n);
// Reads size bytes at offset from the archive (pread on a fresh descriptor: thread-safe).
// MASA_ERR naming `what` when the archive ends early (truncated) or cannot be opened.
int tar_read_at(const char *path, int64_t offset, int64_t size, uint8_t **buf, const char *what);

typedef struct {
  FILE *f;
  char path[1024];
} tar_writer;

int tar_writer_open(tar_writer *w, const char *path);
int tar_writer_add(tar_writer *w, const char *name, const void *data, size_t n);
// Writes the two zero blocks that end an archive and closes it.
int tar_writer_close(tar_writer *w);

#endif
