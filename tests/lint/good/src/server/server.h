/* lint-layers.py fixture: tests/lint/run.sh */
#include "core/core.h"
