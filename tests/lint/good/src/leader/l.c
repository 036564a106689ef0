/* lint-layers.py fixture: tests/lint/run.sh */
#include "agent_iam.h"
#include <core/core.h>
#include "leader/leader.h"
