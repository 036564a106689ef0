/* lint-layers.py fixture: tests/lint/run.sh */
#include <string.h>
#include "core.h"
#include "core/core.h"
