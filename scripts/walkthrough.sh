#!/bin/sh
# `make run` for now: a short local walk-through of what exists. The
# service itself (agent-iam serve) arrives with the store and server.
# Usage: scripts/walkthrough.sh BUILD/agent-iam BUILD/examples
set -eu
bin=$1
examples=$2
tok=$(mktemp)
trap 'rm -f "$tok"' EXIT INT TERM
echo "== agent-iam $("$bin" version | cut -d' ' -f2): the Quick Start of the README, in C =="
"$examples/quickstart" >"$tok"
echo
echo "== the delegated token, decoded (agent-iam token show @FILE) =="
"$bin" token show "@$tok"
echo
echo "(token show decodes without verifying; the example above verified it)"
