#include "cli/schemas.h"

void register_all_schemas(config *cfg) { config_register(cfg, bench_schema); }
