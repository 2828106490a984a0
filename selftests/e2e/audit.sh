#!/usr/bin/env bash
# audit.sh - end-to-end test of `kars audit verify` on real audit logs: exit
# 0 on a good log, 1 naming the first bad record on a damaged or forged one,
# 1 on a missing file, 2 on bad usage; and a log rewritten by jq still
# verifies. The logs are written by the library itself (bench/audit write).
# Usage: selftests/e2e/audit.sh BUILD_DIR. Prints "e2e/audit: N passed, N failed".
set -u

# shellcheck source=selftests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
E2E_NAME=e2e/audit

build=${1:-build}
kars=$build/bin/kars
writer=$build/bench/audit
tmp=$(mktemp -d /tmp/kars-e2e-audit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT


for bin in "$kars" "$writer"; do
	[ -x "$bin" ] || e2e_abort "$bin is missing (make all)"
done

log=$tmp/audit.jsonl key=$tmp/audit.key
# 40 records, a checkpoint every 16: seq 0 checkpoint, 1 "audit.open",
# 2..41 the records (line N holds seq N-1), checkpoints in between, one at close.
"$writer" write --out "$log" --key "$key" --records 40 --every 16 ||
	e2e_abort "writing the test log failed"
"$writer" write --out "$tmp/crashed.jsonl" --key "$key" --records 5 --every 16 --crash
"$writer" write --out "$tmp/other.jsonl" --key "$tmp/other.key" --records 5

check "a good log, with its public key: exit 0" 0 'valid: 45 records \(41 entries, 4 checkpoints\)' -- "$kars" audit verify "$log" --pubkey "$key.pub"
check "signed through its last record" 0 'signed through seq 44 by the public key given' -- "$kars" audit verify --pubkey "$key.pub" "$log"
check "without a key: integrity only, said so" 0 'the key in the log \(pass --pubkey' -- "$kars" audit verify "$log"
check "a crashed writer: the unsigned tail is reported" 0 '6 records after seq 0 are not signed yet' -- "$kars" audit verify "$tmp/crashed.jsonl" --pubkey "$key.pub"

sed '10s/"decision":"allow"/"decision":"deny"/' "$log" >"$tmp/tampered.jsonl"
check "(the edit took)" 1 '' -- cmp -s "$log" "$tmp/tampered.jsonl"
check "a flipped decision: line 10 named, exit 1" 1 'line 10 \(byte [0-9]+, seq 9\): hash does not match' -- "$kars" audit verify "$tmp/tampered.jsonl" --pubkey "$key.pub"
check "and how much verified before it" 1 'INVALID \(9 records before it verified\)' -- "$kars" audit verify "$tmp/tampered.jsonl"
sed '20d' "$log" >"$tmp/deleted.jsonl"
check "a deleted record" 1 'line 20 \(byte [0-9]+, seq 19\): seq is 20: record\(s\) missing' -- "$kars" audit verify "$tmp/deleted.jsonl"
sed -n '1,30p;30p;31,$p' "$log" >"$tmp/duplicated.jsonl"
check "a duplicated record" 1 'line 31 .*seq is 29: a record repeated' -- "$kars" audit verify "$tmp/duplicated.jsonl"
head -c -20 "$log" >"$tmp/torn.jsonl"
check "a torn last record" 1 'line 45 .*torn record' -- "$kars" audit verify "$tmp/torn.jsonl"
check "a log signed by another key" 1 'line 1 .*not by the public key given' -- "$kars" audit verify "$tmp/other.jsonl" --pubkey "$key.pub"
check "a missing file" 1 'No such file' -- "$kars" audit verify "$tmp/nope.jsonl"
echo "not a key" >"$tmp/bad.pub"
check "a bad public key file" 1 'expected an Ed25519 public key' -- "$kars" audit verify "$log" --pubkey "$tmp/bad.pub"
if command -v jq >/dev/null; then
	jq . "$log" | jq -c . >"$tmp/jq.jsonl"
	check "rewritten by jq: still valid" 0 'valid: 45 records' -- "$kars" audit verify "$tmp/jq.jsonl" --pubkey "$key.pub"
fi

check "audit without a command: exit 2" 2 'usage: kars audit verify' -- "$kars" audit
check "verify without FILE: exit 2" 2 'expected one FILE' -- "$kars" audit verify
check "verify with two FILEs: exit 2" 2 'expected one FILE' -- "$kars" audit verify "$log" "$log"
check "an unknown option: exit 2" 2 'unknown option' -- "$kars" audit verify --bogus "$log"
check "--pubkey without its FILE: exit 2" 2 'missing argument' -- "$kars" audit verify "$log" --pubkey
check "kars --help lists audit verify" 0 'audit verify FILE \[--pubkey FILE\]' -- "$kars" --help

e2e_summary
