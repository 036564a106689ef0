/* lint-layers.py fixture: tests/lint/run.sh */
#include "server/server.h"
