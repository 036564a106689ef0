/* lint-layers.py fixture: tests/lint/run.sh */
#include "server.h"
#include "nothere.h"
