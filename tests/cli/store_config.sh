#!/bin/sh
# CLI tests of provider configs and API keys on a local home: config init
# github|google|aws (flags checked, secrets from argv, files and stdin, a
# GitHub key that is not a PEM RSA private key refused), config show
# (secrets redacted, text and --json), apikey add|list|remove, the audit
# rows they write, and no secret ever in an output or in the database.
# Usage: tests/cli/store_config.sh BUILD/agent-iam
set -u
bin=$1
. "$(dirname "$0")/lib.sh"

# expect NAME WANT_EXIT STDERR_PATTERN -- command...
# Every stdout and stderr is also kept in $tmp/all for the secret checks.
expect() {
    name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    cat "$tmp/out" "$tmp/err" >>"$tmp/all"
    if [ "$got" -ne "$want" ]; then
        no "$name (exit $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then
        no "$name (stderr lacks \"$pat\": $(head -c 300 "$tmp/err"))"
    else
        ok "$name"
    fi
}
# has NAME PATTERN: the last command's stdout matches
has() { grep -q -- "$2" "$tmp/out" && ok "$1" || no "$1 (stdout lacks \"$2\")"; }
lacks() { grep -q -- "$2" "$tmp/out" && no "$1 (stdout has \"$2\")" || ok "$1"; }

: >"$tmp/all"
h=$tmp/home
gh=$tmp/github.pem
if ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$gh" 2>/dev/null; then
    no "openssl genpkey (needed for the GitHub cases)"
    echo "$pass passed, $fail failed"
    exit 1
fi
# A line of the key's base64 body: it must never be printed or stored clear.
pem_line=$(sed -n 5p "$gh")

# ---- config init github ---------------------------------------------------
expect "github init" 0 "" -- "$bin" --home "$h" config init github \
    --app-id 123 --installation-id 456 --private-key "$gh"
has "github init says so" "GitHub provider configured"
expect "github init with --api-url and --json" 0 "" -- "$bin" --home "$h" --json \
    config init github --app-id 123 --installation-id 456 --private-key "$gh" \
    --api-url https://github.example.com/api/v3
has "github init --json" '"configured": true'
# GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY") files.
openssl pkey -in "$gh" -traditional -out "$tmp/pkcs1.pem" 2>/dev/null
expect "github init with a PKCS#1 key" 0 "" -- "$bin" --home "$tmp/h2" config init github \
    --app-id 7 --installation-id 8 --private-key "$tmp/pkcs1.pem"
expect "github init with --private-key - (stdin)" 0 "" -- sh -c \
    '"$1" --home "$2" config init github --app-id 9 --installation-id 10 --private-key - <"$3"' \
    sh "$bin" "$tmp/h2" "$gh"
expect "github init with a non-PEM stdin" 1 "(stdin) .*not a PEM private key" -- sh -c \
    'echo nothing | "$1" --home "$2" config init github --app-id 9 --installation-id 10 --private-key -' \
    sh "$bin" "$tmp/h2"
expect "github init without --private-key" 2 "private-key is required" -- \
    "$bin" --home "$h" config init github --app-id 1 --installation-id 2
expect "github init without --app-id" 2 "app-id is required" -- \
    "$bin" --home "$h" config init github --installation-id 2 --private-key "$gh"
expect "github init with a non-numeric app id" 2 "app-id" -- \
    "$bin" --home "$h" config init github --app-id abc --installation-id 2 --private-key "$gh"
expect "github init with installation id 0" 2 "installation-id" -- \
    "$bin" --home "$h" config init github --app-id 1 --installation-id 0 --private-key "$gh"
expect "github init with an ftp api url" 2 "api-url" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --api-url ftp://x
expect "github init with plain http to a remote host" 2 "api-url" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --api-url http://example.com
expect "github init with plain http to localhost" 0 "" -- "$bin" --home "$tmp/h2" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --api-url http://127.0.0.1:8080
# the host is the one libcurl parses: user "localhost", host evil.invalid
expect "github init with user info disguising the host" 2 "without user info" -- \
    "$bin" --home "$tmp/h5" config init github --app-id 1 --installation-id 2 \
    --private-key "$gh" --api-url 'http://localhost:1@evil.invalid'
expect "github init with user info in an https url" 2 "api-url" -- "$bin" --home "$tmp/h5" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" \
    --api-url 'https://u:p@github.example.com'
expect "google init with user info disguising the host" 2 "token-url" -- "$bin" --home "$tmp/h5" \
    config init google --client-id c --client-secret s --refresh-token r \
    --token-url 'http://127.0.0.1@evil.invalid/token'
expect "github init with plain http to [::1]" 0 "" -- "$bin" --home "$tmp/h5" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --api-url 'http://[::1]:8080'
expect "github init with --owner" 0 "" -- "$bin" --home "$tmp/h5" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --owner my-org
expect "config show with the github owner" 0 "" -- "$bin" --home "$tmp/h5" config show --json
has "config show has the github owner" '"owner": "my-org"'
expect "github init with a bad --owner" 2 "owner" -- "$bin" --home "$tmp/h5" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --owner 'a/b'
expect "github init with an unknown option" 2 "unknown option" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$gh" --privatekey x
echo "not a key at all" >"$tmp/bad.pem"
expect "github init refuses a non-PEM file" 1 "not a PEM private key" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$tmp/bad.pem"
openssl req -x509 -key "$gh" -subj /CN=x -days 1 -out "$tmp/cert.pem" 2>/dev/null
expect "github init refuses a certificate" 1 "not a PEM private key" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$tmp/cert.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.pem" 2>/dev/null
expect "github init refuses a non-RSA key" 1 "not an RSA private key" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$tmp/ec.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -aes256 -pass pass:pw \
    -out "$tmp/enc.pem" 2>/dev/null
expect "github init refuses an encrypted key (no prompt)" 1 "encrypted" -- \
    sh -c "'$bin' --home '$h' config init github --app-id 1 --installation-id 2 \
        --private-key '$tmp/enc.pem' </dev/null"
head -c 20000 /dev/zero | tr '\0' 'A' >"$tmp/huge.pem"
expect "github init refuses a huge file" 1 "too large" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$tmp/huge.pem"
expect "github init with a missing key file" 1 "cannot open" -- "$bin" --home "$h" \
    config init github --app-id 1 --installation-id 2 --private-key "$tmp/none.pem"

# ---- config init google -----------------------------------------------------
expect "google init from argv" 0 "" -- "$bin" --home "$h" config init google \
    --client-id cid.apps.example --client-secret GOCSPX-argv-secret-1 \
    --refresh-token 1//argv-refresh-1
printf 'GOCSPX-file-secret-2\n' >"$tmp/cs"
printf '1//file-refresh-2\n' >"$tmp/rt"
expect "google init from files" 0 "" -- "$bin" --home "$h" config init google \
    --client-id cid --client-secret-file "$tmp/cs" --refresh-token-file "$tmp/rt"
expect "google init from stdin" 0 "" -- sh -c "printf '1//stdin-refresh-3\n' | \
    '$bin' --home '$h' config init google --client-id cid \
    --client-secret-file '$tmp/cs' --refresh-token -"
expect "google init with two secrets from stdin" 0 "" -- sh -c "printf 'GOCSPX-stdin-4\n1//stdin-refresh-4\n' | \
    '$bin' --home '$h' config init google --client-id cid --client-secret - --refresh-token - \
    --token-url http://localhost:9999/token"
expect "google init with empty stdin" 1 "nothing to read" -- sh -c \
    "'$bin' --home '$h' config init google --client-id cid --client-secret x --refresh-token - </dev/null"
expect "google init without --refresh-token" 2 "refresh-token" -- "$bin" --home "$h" \
    config init google --client-id cid --client-secret s
expect "google init without --client-id" 2 "client-id is required" -- "$bin" --home "$h" \
    config init google --client-secret s --refresh-token r
expect "google init with a secret twice" 2 "not both" -- "$bin" --home "$h" config init google \
    --client-id cid --client-secret s --client-secret-file "$tmp/cs" --refresh-token r
expect "google init with an empty secret" 2 "client-secret" -- "$bin" --home "$h" \
    config init google --client-id cid --client-secret '' --refresh-token r
: >"$tmp/empty"
expect "google init with an empty secret file" 1 "" -- "$bin" --home "$h" \
    config init google --client-id cid --client-secret-file "$tmp/empty" --refresh-token r
expect "google init with a missing secret file" 1 "cannot open" -- "$bin" --home "$h" \
    config init google --client-id cid --client-secret-file "$tmp/none" --refresh-token r
grep -q "GOCSPX" "$tmp/err" && no "an error message quotes no secret" || ok "an error message quotes no secret"

# ---- config init aws --------------------------------------------------------
arn=arn:aws:iam::123456789012:role/MyRole
expect "aws init, README form" 0 "" -- "$bin" --home "$h" config init aws \
    --region us-east-1 --role-arn "$arn"
has "aws init says so" "AWS provider configured"
expect "aws init with every option" 0 "" -- "$bin" --home "$h" config init aws \
    --region eu-west-1 --role-arn "$arn" --access-key-id AKIAIOSFODNN7EXAMPLE \
    --secret-access-key wJalrXUtnFEMI/K7MDENG/argvSECRET --external-id ext-42 \
    --duration-seconds 3600 --sts-url https://sts.eu-west-1.amazonaws.com
printf 'wJalrXUtnFEMI/K7MDENG/fileSECRET\n' >"$tmp/sak"
expect "aws init with the secret key from a file" 0 "" -- "$bin" --home "$tmp/h3" \
    config init aws --region us-east-1 --role-arn "$arn" \
    --access-key-id AKIAIOSFODNN7EXAMPLE --secret-access-key-file "$tmp/sak"
expect "aws init without --role-arn" 2 "role-arn is required" -- "$bin" --home "$h" \
    config init aws --region us-east-1
expect "aws init with a bad region" 2 "region" -- "$bin" --home "$h" \
    config init aws --region 'US EAST' --role-arn "$arn"
expect "aws init with a bad role arn" 2 "role-arn" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn MyRole
expect "aws init with 899 seconds" 2 "900 to 43200" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --duration-seconds 899
expect "aws init with 43201 seconds" 2 "900 to 43200" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --duration-seconds 43201
expect "aws init with a non-numeric duration" 2 "duration-seconds" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --duration-seconds 1h
expect "aws init with a key id and no secret" 2 "go together" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --access-key-id AKIAIOSFODNN7EXAMPLE
expect "aws init with a secret and no key id" 2 "go together" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --secret-access-key s
expect "aws init with a bad key id" 2 "access-key-id" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --access-key-id akia --secret-access-key s
expect "aws init with a bad sts url" 2 "sts-url" -- "$bin" --home "$h" \
    config init aws --region us-east-1 --role-arn "$arn" --sts-url sts.amazonaws.com

expect "config init of an unknown provider" 2 "unknown provider" -- "$bin" --home "$h" config init slack
expect "config init without a provider" 2 "provider is required" -- "$bin" --home "$h" config init
expect "config without a command" 2 "usage" -- "$bin" --home "$h" config
expect "config with an unknown command" 2 "unknown config command" -- "$bin" --home "$h" config edit

# ---- config show ------------------------------------------------------------
expect "config show" 0 "" -- "$bin" --home "$h" config show
has "show lists github" "^github:"
has "show redacts the private key" "privateKey: \*\*\*REDACTED\*\*\*"
has "show redacts the client secret" "clientSecret: \*\*\*REDACTED\*\*\*"
has "show redacts the refresh token" "refreshToken: \*\*\*REDACTED\*\*\*"
has "show redacts the secret access key" "secretAccessKey: \*\*\*REDACTED\*\*\*"
has "show keeps the access key id" "accessKeyId: AKIAIOSFODNN7EXAMPLE"
has "show keeps the app id" "appId: 123"
lacks "show prints no key material" "$pem_line"
lacks "show prints no PEM header" "BEGIN"
expect "config show --json" 0 "" -- "$bin" --home "$h" config show --json
has "show --json redacts the private key" '"privateKey": "\*\*\*REDACTED\*\*\*"'
has "show --json keeps the api url" '"apiUrl": "https://github.example.com/api/v3"'
has "show --json keeps the duration" '"sessionDuration": 3600'
has "show --json keeps the token url" '"tokenUrl": "http://localhost:9999/token"'
has "show --json has the apikeys object" '"apikeys": {}'
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" 2>/dev/null \
    && ok "show --json is JSON" || no "show --json is JSON"
expect "config show on a new home" 0 "" -- "$bin" --home "$tmp/h4" config show
has "show says what is not configured" "github: not configured"
expect "config show with an argument" 2 "unexpected argument" -- "$bin" --home "$h" config show github

# ---- apikey -----------------------------------------------------------------
expect "apikey add (README form)" 0 "" -- "$bin" --home "$h" apikey add --name openai \
    --provider openai --key sk-argv-key-1
has "apikey add says so" 'API key "openai" added'
printf 'sk-file-key-2\n' >"$tmp/key"
expect "apikey add from a file" 0 "" -- "$bin" --home "$h" apikey add --name anthropic \
    --provider anthropic --key-file "$tmp/key" --base-url https://api.anthropic.com \
    --ttl-minutes 30
expect "apikey add from stdin" 0 "" -- sh -c "printf 'sk-stdin-key-3\n' | \
    '$bin' --home '$h' --json apikey add --name stripe --provider stripe --key -"
has "apikey add --json" '"added": true'
expect "apikey add replaces a name" 0 "" -- "$bin" --home "$h" apikey add --name openai \
    --provider azure --key sk-argv-key-4 --ttl 15
expect "apikey add without --key" 2 "key" -- "$bin" --home "$h" apikey add --name a --provider p
expect "apikey add without --name" 2 "name is required" -- "$bin" --home "$h" apikey add --provider p --key k
expect "apikey add with --key and --key-file" 2 "not both" -- "$bin" --home "$h" \
    apikey add --name a --provider p --key k --key-file "$tmp/key"
expect "apikey add with a bad name" 2 "name" -- "$bin" --home "$h" apikey add --name 'a b' --provider p --key k
expect "apikey add with a long name" 2 "name" -- "$bin" --home "$h" apikey add \
    --name "$(head -c 65 /dev/zero | tr '\0' n)" --provider p --key k
expect "apikey add with a bad provider" 2 "provider" -- "$bin" --home "$h" apikey add --name a --provider 'p/q' --key k
expect "apikey add with ttl 0" 2 "ttl-minutes" -- "$bin" --home "$h" apikey add --name a --provider p --key k --ttl-minutes 0
expect "apikey add with ttl abc" 2 "ttl-minutes" -- "$bin" --home "$h" apikey add --name a --provider p --key k --ttl-minutes abc
expect "apikey add with a bad base url" 2 "base-url" -- "$bin" --home "$h" apikey add --name a --provider p --key k --base-url api.example.com
expect "apikey add with an empty key" 2 "key" -- "$bin" --home "$h" apikey add --name a --provider p --key ''
expect "apikey add with an empty key file" 1 "" -- "$bin" --home "$h" apikey add --name a --provider p --key-file "$tmp/empty"
printf 'sk-\377\376\n' >"$tmp/binkey"
expect "apikey add with a key that is not UTF-8" 1 "UTF-8" -- "$bin" --home "$h" apikey add --name a --provider p --key-file "$tmp/binkey"
expect "google init with a secret that is not UTF-8" 1 "UTF-8" -- "$bin" --home "$h" \
    config init google --client-id cid --client-secret-file "$tmp/binkey" --refresh-token r
head -c 5000 /dev/zero | tr '\0' k >"$tmp/bigkey"
expect "apikey add with a 5000-byte key" 1 "4096" -- "$bin" --home "$h" apikey add --name a --provider p --key-file "$tmp/bigkey"
expect "apikey list" 0 "" -- "$bin" --home "$h" apikey list
has "list shows openai" "^openai  *azure  *15m"
has "list shows anthropic" "^anthropic  *anthropic  *30m .*https://api.anthropic.com"
has "list shows stripe" "^stripe "
lacks "list shows no key" "sk-"
expect "apikey list --json" 0 "" -- "$bin" --home "$h" apikey list --json
has "list --json" '"name": "anthropic"'
has "list --json has the TTL the text shows" '"ttlMinutes": 15'
has "list --json has the base URL the text shows" '"baseUrl": "https://api.anthropic.com"'
has "list --json has a default TTL as null" '"ttlMinutes": null'
has "list --json has no base URL as null" '"baseUrl": null'
expect "--json version" 0 "" -- "$bin" --json version
has "--json version prints JSON" '^  "version": "[0-9]'
expect "version --json" 0 "" -- "$bin" version --json
has "version --json prints JSON" '"version": "'
expect "version" 0 "" -- "$bin" version
has "version prints text" '^agent-iam [0-9]'
lacks "list --json shows no key" "sk-"
expect "config show lists the API keys" 0 "" -- "$bin" --home "$h" config show --json
has "show --json has the API key" '"providerName": "anthropic"'
has "show --json redacts the API key" '"apiKey": "\*\*\*REDACTED\*\*\*"'
lacks "show --json shows no key" "sk-"
expect "apikey remove" 0 "" -- "$bin" --home "$h" apikey remove openai
has "apikey remove says so" 'API key "openai" removed'
expect "apikey remove again" 1 'API key "openai" not found' -- "$bin" --home "$h" apikey remove openai
expect "apikey remove without a name" 2 "name" -- "$bin" --home "$h" apikey remove
expect "apikey remove with a bad name" 2 "name" -- "$bin" --home "$h" apikey remove 'a/b'
expect "apikey without a command" 2 "usage" -- "$bin" --home "$h" apikey
expect "apikey with an unknown command" 2 "unknown apikey command" -- "$bin" --home "$h" apikey show
expect "apikey list on a new home" 0 "" -- "$bin" --home "$tmp/h4" apikey list
has "empty list says so" "No API keys configured"

# ---- audit rows, and no secret anywhere -------------------------------------
expect "audit tail" 0 "" -- "$bin" --home "$h" audit tail -n 100
cat "$tmp/out" >>"$tmp/all"
has "audit has config-init" "config-init"
has "audit has apikey-add" "apikey-add"
has "audit has apikey-remove" "apikey-remove"
clear=0
for s in GOCSPX sk-argv sk-file sk-stdin argv-refresh file-refresh stdin-refresh \
    argvSECRET fileSECRET "$pem_line" "PRIVATE KEY"; do
    grep -qF -- "$s" "$tmp/all" && no "no output shows $s" || ok "no output shows $s"
    for f in "$h"/agent-iam.db* "$tmp/h2"/agent-iam.db* "$tmp/h3"/agent-iam.db*; do
        grep -qF -- "$s" "$f" && clear=1 && no "$f holds $s in clear"
    done
done
[ $clear -eq 0 ] && ok "the database files hold no secret in clear"
cat "$h"/agent-iam.db* | grep -qF "api.anthropic.com" \
    && ok "the search finds what is stored in clear" || no "the search finds what is stored in clear"

finish
