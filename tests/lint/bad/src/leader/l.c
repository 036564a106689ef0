/* lint-layers.py fixture: tests/lint/run.sh */
#include "leader.h"
#include "follower/follower.h"
#include "server/tls.h"
#include <server/tls.h>
