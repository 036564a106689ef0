/* lint-layers.py fixture: tests/lint/run.sh */
#include <stddef.h>
