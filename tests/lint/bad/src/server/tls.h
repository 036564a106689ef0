/* lint-layers.py fixture: tests/lint/run.sh */
#include "agent_iam.h"
