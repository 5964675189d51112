// Every module's config schema, so that any recipe can be validated in one place.
#ifndef MASA_SCHEMAS_H
#define MASA_SCHEMAS_H

#include "core/config.h"

extern const cfg_key bench_schema[];
void register_all_schemas(config *cfg);

#endif
