#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char errbuf[2048];

int masa_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return MASA_ERR;
}

const char *masa_errmsg(void) { return errbuf; }

void masa_errclear(void) { errbuf[0] = 0; }
