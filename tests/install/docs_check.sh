#!/bin/sh
# docs_check.sh PREFIXDIR: the man page and the bash completion that
# `make install` put under PREFIXDIR, held to the command table: every
# command of src/cli/main.c's table and every entry of `agent-iam help`
# is in the man page; bash completes every command word of the list, and
# after each command every flag of its own --help; the man page renders
# without a warning. Prints ok/FAIL lines; exits 1 on a failure.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
pre=$1
bin=$pre/bin/agent-iam
man1=$pre/share/man/man1/agent-iam.1
comp=$pre/share/bash-completion/completions/agent-iam
fail=0
ok() { echo "ok   $1"; }
no() { fail=1; echo "FAIL $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

[ -f "$man1" ] && ok "installed share/man/man1/agent-iam.1" || no "installed share/man/man1/agent-iam.1"
[ -f "$comp" ] && ok "installed share/bash-completion/completions/agent-iam" \
    || no "installed share/bash-completion/completions/agent-iam"
[ -f "$man1" ] && [ -f "$comp" ] || exit 1

# The entries of the help list (main.c's layout: an entry starts indented
# two spaces, its description after two spaces; its command words run up
# to the first word that is not one).
"$bin" help | awk '/^  [a-z]/ { w = ""; l = substr($0, 3); i = index(l, "  ");
    if (i > 0) l = substr(l, 1, i - 1); n = split(l, a, " ");
    for (i = 1; i <= n; i++) { if (a[i] !~ /^[a-z][a-z0-9-]*$/) break;
        w = w (w == "" ? "" : " ") a[i] } print w }' | sort -u > "$tmp/entries"
# main.c's table of commands (two entries may share a line)
grep -o '{"[a-z-]*", cli_[a-z_]*}' "$top/src/cli/main.c" \
    | sed 's/{"\([a-z-]*\)".*/\1/' | sort -u > "$tmp/table"
[ -s "$tmp/entries" ] && [ "$(wc -l < "$tmp/table")" -ge 10 ] \
    && ok "help list ($(wc -l < "$tmp/entries") entries) and main.c table ($(wc -l < "$tmp/table") commands) read" \
    || no "help list and main.c table read"

# man page: a .B line for every entry, every command of the table
sed -n 's/^\.B //p' "$man1" | sed 's/\\-/-/g' > "$tmp/man_entries"
missing=
while read -r e; do
    grep -q "^$e\( \|$\)" "$tmp/man_entries" || missing="$missing [$e]"
done < "$tmp/entries"
while read -r c; do
    grep -q "^$c\( \|$\)" "$tmp/man_entries" || missing="$missing [$c]"
done < "$tmp/table"
[ -z "$missing" ] && ok "man page has every command of the help list and main.c" \
    || no "man page lacks:$missing"
warn=$(LC_ALL=C MANWIDTH=80 man --warnings -l "$man1" 2>&1 >/dev/null)
[ -z "$warn" ] && ok "man page renders without warnings" || no "man page warnings: $warn"
sh "$top/scripts/gen-doc.sh" man "$bin" | cmp -s - "$man1" \
    && ok "installed man page is the one the installed agent-iam makes" \
    || no "installed man page differs from gen-doc.sh man"

# completion: what bash offers after WORDS... (the last word is the prefix)
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=(agent-iam "$@"); COMP_CWORD=$#;
             _agent_iam; printf "%s\n" "${COMPREPLY[@]}"' sh "$comp" "$@"
}
complete_words "" > "$tmp/top"
missing=
while read -r c; do grep -qx "$c" "$tmp/top" || missing="$missing $c"; done < "$tmp/table"
for c in help version; do grep -qx "$c" "$tmp/top" || missing="$missing $c"; done
[ -z "$missing" ] && ok "completion offers every command of main.c's table" \
    || no "completion lacks commands:$missing"
missing=
while read -r e; do
    # each word of the entry completes after the words before it
    set -- $e
    before=
    for w in "$@"; do
        # shellcheck disable=SC2086
        complete_words $before "" | grep -qx "$w" || missing="$missing [$e: $w]"
        before="$before $w"
    done
    # and every flag of the command's own usage after all its words
    # (help's usage is the whole list)
    [ "$e" = help ] && continue
    # shellcheck disable=SC2086
    "$bin" $e --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u > "$tmp/flags"
    # shellcheck disable=SC2086
    complete_words $e "--" > "$tmp/offered"
    while read -r f; do
        grep -qx -- "$f" "$tmp/offered" || missing="$missing [$e $f]"
    done < "$tmp/flags"
done < "$tmp/entries"
[ -z "$missing" ] && ok "completion offers every entry's words and the flags of its --help" \
    || no "completion lacks:$missing"
# a file flag's value completes file names
: >"$tmp/ca-file.pem"
complete_words token verify T --ca-cert "$tmp/ca-f" | grep -qx "$tmp/ca-file.pem" \
    && ok "completion offers files after --ca-cert" || no "completion offers files after --ca-cert"
sh "$top/scripts/gen-doc.sh" completion "$bin" | cmp -s - "$comp" \
    && ok "installed completion is the one the installed agent-iam makes" \
    || no "installed completion differs from gen-doc.sh completion"
exit $fail
