/* lint-layers.py fixture: tests/lint/run.sh */
#include "server.h"
#include "server/tls.h"
#include "tls.h"
