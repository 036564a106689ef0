#!/bin/sh
# gen-doc.sh man|completion BIN: the man page (agent-iam.1, roff) or the
# bash completion script of agent-iam, written on stdout from the command
# list `BIN help` prints (usage_text in src/cli/main.c). Both are made at
# build time from that one list, so they cannot drift from it;
# tests/security/cli_test.py holds the list to main.c's command table and
# to each command's own usage, tests/install/run.sh the installed files
# to the list.
#
# The list's layout (main.c): a group header is a line ending in ':' at
# column 0; an entry starts indented two spaces, its further flags are
# indented 6, its description starts 32 columns in (or after two spaces
# on the entry's line). The text after the last entry is prose.
set -eu
mode=${1:-}
bin=${2:-}
if [ -z "$bin" ] || { [ "$mode" != man ] && [ "$mode" != completion ]; }; then
    echo "usage: gen-doc.sh man|completion BIN" >&2
    exit 2
fi
version=$("$bin" version | sed -n 's/^agent-iam //p')
"$bin" help | awk -v mode="$mode" -v version="$version" '
function roff(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    if (s ~ /^[.'"'"']/) s = "\\&" s
    return s
}
function words_of(s,    n, a, i, w) {
    w = ""
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) {
        if (a[i] !~ /^[a-z][a-z0-9-]*$/) break
        w = w (w == "" ? "" : " ") a[i]
    }
    return w
}
function add_flags(key, s,    t, f) {
    t = s
    while (match(t, /--[a-z][a-z0-9-]*/)) {
        f = substr(t, RSTART, RLENGTH)
        t = substr(t, RSTART + RLENGTH)
        if (!((key, f) in seen)) { seen[key, f] = 1; flags[key] = flags[key] " " f }
    }
    if (s ~ /LEADER/) add_flags(key, leader_flags)
    if (s ~ /SERVER/) add_flags(key, server_flags)
}
function flush_entry() {
    if (cur == "") return
    body = body ".TP\n.B " roff(syn) "\n" roff(desc == "" ? "" : desc) "\n"
    cur = ""; syn = ""; desc = ""
}
BEGIN {
    leader_flags = "--leader-url --auth-token --auth-token-file --ca-cert"
    server_flags = "--leader-url --ca-cert"
    state = "head"; nkeys = 0
}
state == "head" && /^usage: / { usage[++nusage] = substr($0, 8); next }
state == "head" && /^       agent-iam/ { usage[++nusage] = substr($0, 8); next }
/^[a-z][a-z ,]*:$/ && state != "prose" {
    flush_entry(); state = "list"
    body = body ".SS " roff(substr($0, 1, length($0) - 1)) "\n"
    next
}
/^LEADER:/ { flush_entry(); state = "prose"; prose = prose roff($0) "\n"; next }
state == "list" && /^  [a-z]/ {
    flush_entry()
    line = substr($0, 3)
    i = index(line, "  ")
    if (i > 0) { syn = substr(line, 1, i - 1); desc = substr(line, i); sub(/^ +/, "", desc) }
    else { syn = line; desc = "" }
    cur = words_of(syn)
    if (!(cur in known)) { known[cur] = 1; keys[++nkeys] = cur }
    add_flags(cur, syn)
    next
}
{ ind = match($0, /[^ ]/) - 1 }
state == "list" && ind >= 3 && ind <= 15 {
    line = $0; sub(/^ +/, "", line)
    i = index(line, "  ")
    part = (i > 0 ? substr(line, 1, i - 1) : line)
    syn = syn " " part
    add_flags(cur, part)
    if (i > 0) { d = substr(line, i); sub(/^ +/, "", d); desc = desc (desc == "" ? "" : " ") d }
    next
}
state == "list" && ind >= 16 {
    line = $0; sub(/^ +/, "", line)
    desc = desc (desc == "" ? "" : " ") line
    next
}
/^$/ { if (state == "prose") prose = prose ".PP\n"; next }
{ if (state == "list") { flush_entry(); state = "prose" }
  if (state == "prose") prose = prose roff($0) "\n" }
END {
    flush_entry()
    if (mode == "man") {
        print ".\\\" agent-iam.1: made by scripts/gen-doc.sh from `agent-iam help`; do not edit"
        print ".TH AGENT-IAM 1 \"\" \"agent-iam " version "\" \"User Commands\""
        print ".SH NAME"
        print "agent\\-iam \\- capability\\-token credential broker for AI agents"
        print ".SH SYNOPSIS"
        for (i = 1; i <= nusage; i++) print (i > 1 ? ".br\n" : "") roff(usage[i])
        print ".SH DESCRIPTION"
        print "Agents hold signed capability tokens (scopes plus constraints), delegate"
        print "narrower tokens to sub\\-agents, and trade a token for a short\\-lived real"
        print "credential. Commands act on a home (a SQLite database and its"
        print ".BR master.key )"
        print "or, where they take"
        print ".BR \\-\\-leader\\-url ,"
        print "on a running leader or follower over HTTPS."
        print ".B \\-h"
        print "or"
        print ".B \\-\\-help"
        print "after any command prints its usage and does nothing else."
        print ".SH COMMANDS"
        printf "%s", body
        print ".SH OPTIONS AND ENVIRONMENT"
        printf "%s", prose
        print ".SH EXIT STATUS"
        print "0 ok; 1 denied, invalid or failed (one line on stderr); 2 usage error."
        print ".SH SEE ALSO"
        print "README.md, docs/http-api.md and deploy/README.md of the source tree."
        exit
    }
    print "# bash completion for agent-iam: made by scripts/gen-doc.sh from"
    print "# `agent-iam help`; do not edit."
    print "_agent_iam() {"
    print "    local cur=${COMP_WORDS[COMP_CWORD]} path= w i=1 opts"
    print "    while [ \"$i\" -lt \"$COMP_CWORD\" ]; do"
    print "        w=${COMP_WORDS[i]}"
    print "        case $w in"
    print "        --home) i=$((i + 2)); continue ;;"
    print "        --json|--home=*) i=$((i + 1)); continue ;;"
    print "        esac"
    print "        case \" $(_agent_iam_words \"$path\") \" in"
    print "        *\" $w \"*) path=${path:+$path }$w ;;"
    print "        *) break ;;"
    print "        esac"
    print "        i=$((i + 1))"
    print "    done"
    print "    # a flag whose value is a file: complete file names"
    print "    case ${COMP_WORDS[COMP_CWORD - 1]} in"
    print "    --home|--file|--*-file|--ca-cert|--tls-cert|--tls-key|--private-key|--access-log)"
    print "        COMPREPLY=($(compgen -f -- \"$cur\")); return ;;"
    print "    esac"
    print "    case $cur in"
    print "    -*) opts=\"$(_agent_iam_flags \"$path\") --help --home --json\" ;;"
    print "    *) opts=$(_agent_iam_words \"$path\") ;;"
    print "    esac"
    print "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))"
    print "}"
    # the words that may follow a command path
    for (i = 1; i <= nkeys; i++) {
        n = split(keys[i], a, " ")
        p = ""
        for (j = 1; j <= n; j++) {
            if (!((p, a[j]) in nextw)) { nextw[p, a[j]] = 1; next_of[p] = next_of[p] " " a[j]; if (!(p in pseen)) { pseen[p] = 1; paths[++npaths] = p } }
            p = p (p == "" ? "" : " ") a[j]
        }
    }
    print "_agent_iam_words() {"
    print "    case $1 in"
    for (i = 1; i <= npaths; i++) print "    \"" paths[i] "\") echo \"" substr(next_of[paths[i]], 2) "\" ;;"
    print "    esac"
    print "}"
    print "_agent_iam_flags() {"
    print "    case $1 in"
    for (i = 1; i <= nkeys; i++) if (flags[keys[i]] != "") print "    \"" keys[i] "\") echo \"" substr(flags[keys[i]], 2) "\" ;;"
    print "    esac"
    print "}"
    print "complete -F _agent_iam agent-iam"
}'
