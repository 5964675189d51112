#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static log_level g_level = LOG_INFO;
static int g_rank = 0, g_world = 1;

void log_set_level(log_level lv) { g_level = lv; }
log_level log_get_level(void) { return g_level; }
void log_set_rank(int rank, int world) {
  g_rank = rank;
  g_world = world;
}
int log_rank(void) { return g_rank; }

int log_level_parse(const char *name) {
  static const char *names[] = {"debug", "info", "warn", "error", "quiet"};
  for (int i = 0; i < 5; i++)
    if (strcasecmp(name, names[i]) == 0) return i;
  return -1;
}

void log_msg(log_level lv, const char *fmt, ...) {
  if (lv < g_level) return;
  if (lv < LOG_WARN && g_rank != 0) return;
  static const char *tag[] = {"debug", "info", "warning", "error"};
  char prefix[32] = "";
  if (g_world > 1) snprintf(prefix, sizeof prefix, "[rank %d] ", g_rank);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s%s: ", prefix, tag[lv]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

double time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_begin(progress *p, const char *label, int64_t total, const char *unit) {
  memset(p, 0, sizeof *p);
  p->label = label;
  p->unit = unit;
  p->total = total;
  p->t_start = p->t_last = time_now();
  p->tty = isatty(STDERR_FILENO);
  p->min_interval = p->tty ? 0.2 : 10.0;
}

static void fmt_eta(char *buf, size_t n, double s) {
  if (s < 0 || s > 1e7) {
    snprintf(buf, n, "--:--");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void progress_draw(progress *p, int64_t done, const char *extra, int final) {
  double now = time_now(), el = now - p->t_start;
  double rate = el > 0 ? (double)done / el : 0.0;
  char eta[32];
  fmt_eta(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
  char el_s[32];
  fmt_eta(el_s, sizeof el_s, el);
  fprintf(stderr, "%s%s %lld/%lld  %.2f %s/s  %s %s%s%s%s", p->tty ? "\r\033[K" : "", p->label,
          (long long)done, (long long)p->total, rate, p->unit, final ? "took" : "ETA",
          final ? el_s : eta, extra ? "  " : "", extra ? extra : "",
          (p->tty && !final) ? "" : "\n");
  fflush(stderr);
  p->drawn = 1;
  p->t_last = now;
}

void progress_update(progress *p, int64_t done, const char *extra) {
  if (g_rank != 0 || g_level > LOG_INFO) return;
  if (time_now() - p->t_last < p->min_interval) return;
  progress_draw(p, done, extra, 0);
}

void progress_end(progress *p, int64_t done) {
  if (g_rank != 0 || g_level > LOG_INFO) return;
  progress_draw(p, done, NULL, 1);
}
