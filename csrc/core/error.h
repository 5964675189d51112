// Recoverable errors from input (files, configs, shapes): functions return a negative status and
// leave a message naming the file, the record and what was expected, readable with masa_errmsg().
// Messages are per thread so loader workers do not clobber each other.
#ifndef MASA_ERROR_H
#define MASA_ERROR_H

#define MASA_OK 0
#define MASA_ERR (-1)

// printf-style; always returns MASA_ERR so callers can `return masa_error(...)`.
int masa_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *masa_errmsg(void);
void masa_errclear(void);

#endif
