#!/bin/sh
# Integration tests of the leader: `agent-iam serve` started as a real
# process on 127.0.0.1 with TLS from certificates made here (openssl: a CA
# and a server certificate for 127.0.0.1 and localhost), driven by
# tests/server/server_test.py (Python 3, standard library only; curl too
# for a few checks, skipped without it):
#   1. every route with good input (agent, admin, follower, health)
#   2. bad input: status and "code" of each refusal, and nothing changes
#   3. revocation through the API and the CLI, key rotation
#   4. 10,000 malformed requests, then a good one; RSS bounded
#   5. SIGTERM under load: complete 200s only, exit 0
#   6. 16 held long-polls on --threads 2 do not block checks
#   7. the access log: one line per request, never a secret
#   8. plain HTTP only with --insecure-http
# Every server is started with --port 0 (the port is read back from its
# "listening on" line) and killed on exit. With an ASan build each server
# must exit 0 at SIGTERM with no sanitizer or leak report on its stderr.
# Usage: tests/server/run.sh BUILD/agent-iam
name=server-test
usage_path=tests/server/run.sh
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tls_env.sh"

python3 "$here/server_test.py" "$bin" "$tmp"
rc=$?
[ $rc -eq 0 ] || dump_logs 40
exit $rc
