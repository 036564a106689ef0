#!/bin/sh
# `make install` into a temporary DESTDIR, then build and run a program
# against it with pkg-config, shared, the static library with the system's
# shared dependencies, and a program that starts a leader linked with
# `pkg-config --static` (libagentiam.a and its Requires.private); then
# every command of README.md and deploy/README.md (readme_test.sh).
set -u
top=$(pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
trap 'exit 130' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

if make -s install DESTDIR="$dest" PREFIX=/usr/local >"$dest/log" 2>&1; then
    ok "make install DESTDIR"
else
    no "make install DESTDIR: $(tail -3 "$dest/log")"
fi
for f in bin/agent-iam include/agent_iam.h lib/libagentiam.a lib/libagentiam.so \
         lib/libagentiam.so.0 lib/pkgconfig/agent-iam.pc; do
    [ -e "$dest/usr/local/$f" ] && ok "installed $f" || no "installed $f"
done

export PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig"
flags=$(pkg-config --cflags --libs agent-iam) && ok "pkg-config agent-iam" || no "pkg-config agent-iam"
if cc -std=c11 -Wall -Werror "$top/tests/install/hello.c" $flags -o "$dest/hello" &&
   LD_LIBRARY_PATH="$dest/usr/local/lib" "$dest/hello" | grep -q "signing key v1"; then
    ok "program built with pkg-config runs (shared)"
else
    no "program built with pkg-config runs (shared)"
fi
if cc -std=c11 -Wall -Werror "$top/tests/install/hello.c" \
       -I"$dest/usr/local/include" "$dest/usr/local/lib/libagentiam.a" \
       $(env -u PKG_CONFIG_SYSROOT_DIR -u PKG_CONFIG_PATH pkg-config --libs openssl jansson sqlite3 libcurl) -pthread \
       -o "$dest/hello_static" && "$dest/hello_static" | grep -q "signing key v1"; then
    ok "program linked with libagentiam.a runs"
else
    no "program linked with libagentiam.a runs"
fi
# The README's static link: libagentiam.a with every private dependency
# from `pkg-config --static` (Requires.private); a program that starts a
# leader on 127.0.0.1 and answers /healthz.
sflags=$(pkg-config --static --cflags --libs agent-iam | sed 's/-lagentiam/-Wl,-Bstatic -lagentiam -Wl,-Bdynamic/')
if cc -std=c11 -Wall -Werror "$top/tests/install/leader.c" $sflags -o "$dest/leader" >"$dest/cc.log" 2>&1; then
    ok "program that starts a leader links with pkg-config --static"
else
    no "program that starts a leader links with pkg-config --static: $(grep -c 'undefined reference' "$dest/cc.log") undefined references, $(head -c 300 "$dest/cc.log")"
fi
readelf -d "$dest/leader" 2>/dev/null | grep -q 'NEEDED.*libagentiam' &&
    no "it holds libagentiam.a (not the .so)" || ok "it holds libagentiam.a (not the .so)"
mkdir -m 700 "$dest/lhome" && mkfifo "$dest/lin"
"$dest/leader" "$dest/lhome/home" <"$dest/lin" >"$dest/lport" 2>"$dest/lerr" &
lpid=$!
exec 3>"$dest/lin"
i=0
until [ -s "$dest/lport" ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
h=$(curl -s "http://127.0.0.1:$(cat "$dest/lport")/healthz")
case $h in *'"ok"'*) ok "its leader (ai_leader_start) answers /healthz" ;;
*) no "its leader answers /healthz (got \"$h\"; $(head -c 300 "$dest/lerr"))" ;; esac
exec 3>&-
wait $lpid && ok "its leader stops when asked" || no "its leader stops when asked"
"$dest/usr/local/bin/agent-iam" version | grep -q "^agent-iam " && ok "installed agent-iam runs" \
    || no "installed agent-iam runs"
# The man page and the bash completion, held to the command table.
sh "$top/tests/install/docs_check.sh" "$dest/usr/local" && ok "docs_check.sh" || no "docs_check.sh"
# The systemd units of deploy/ with the installed binary (systemd-analyze
# verify when it exists, and their ExecStart lines run).
sh "$top/tests/install/deploy_verify.sh" "$dest/usr/local/bin/agent-iam" && ok "deploy_verify.sh" \
    || no "deploy_verify.sh"
# Every command of README.md and deploy/README.md, run as written.
sh "$top/tests/install/readme_test.sh" && ok "readme_test.sh" || no "readme_test.sh"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
