/* lint-layers.py fixture: tests/lint/run.sh */
#include "core.h"
#include "server/server.h"
