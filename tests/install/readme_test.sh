#!/bin/sh
# Every command of README.md and deploy/README.md, run as written
# (tests/install/readme_test.py says how, and what it substitutes).
# README=PATH, DEPLOY_README=PATH: other copies of them.
exec python3 "$(dirname "$0")/readme_test.py" "$@"
