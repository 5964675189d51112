// Logging with levels. In distributed runs only rank 0 prints info/debug; warnings and errors
// print on every rank, prefixed with the rank. Output goes to stderr so stdout stays for results.
#ifndef MASA_LOG_H
#define MASA_LOG_H

#include <stdint.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_QUIET = 4 } log_level;

void log_set_level(log_level lv);
log_level log_get_level(void);
// Returns -1 for an unknown name.
int log_level_parse(const char *name);
void log_set_rank(int rank, int world);
int log_rank(void);

void log_msg(log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

// Monotonic wall clock in seconds.
double time_now(void);

// A progress line for long loops: "label  i/total  rate unit/s  ETA mm:ss  extra".
// Redrawn in place on a terminal (at most every min_interval seconds), printed as plain lines
// otherwise (every log_every seconds) so logs stay readable. Rank 0 only.
typedef struct {
  const char *label;
  const char *unit;
  int64_t total;
  double t_start, t_last;
  double min_interval;
  int tty;
  int drawn;
} progress;

void progress_begin(progress *p, const char *label, int64_t total, const char *unit);
// extra may be NULL; it is appended to the line (for example the current losses).
void progress_update(progress *p, int64_t done, const char *extra);
void progress_end(progress *p, int64_t done);

#endif
