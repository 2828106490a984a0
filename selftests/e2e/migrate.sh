#!/usr/bin/env bash
# migrate.sh - `kars migrate` and `kars convert` as a user runs them: the
# fixtures of selftests/convert/ against their checked-in golden outputs
# (stdout and stderr; any drift fails), every output through `kars
# validate`, exit codes 0/1/2/4, the dropped fields by path on stderr,
# --out-dir (one file per object), hostile YAML refused with its line, and
# to-overlay/to-native against the local store.
# Usage: selftests/e2e/migrate.sh [BUILD_DIR]; UPDATE_GOLDEN=1 rewrites the
# goldens. Prints "e2e/migrate: N passed, N failed".
set -u

cd "$(dirname "$0")/../.." || exit 2
# shellcheck source=selftests/e2e/lib.sh
. selftests/e2e/lib.sh
E2E_NAME=e2e/migrate

kars=${1:-build}/bin/kars
fx=selftests/convert
tmp=$(mktemp -d /tmp/kars-migrate.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT
export KARS_STATE_DIR=$tmp/state
export SOURCE_DATE_EPOCH=1777507200 # 2026-04-30: the migration-date annotation

# golden NAME WANT-STATUS ARGS...: stdout and stderr must equal
# $fx/golden/NAME.out and NAME.err, and stdout must validate.
golden() {
	local name=$1 want=$2 status
	shift 2
	"$kars" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	status=$?
	if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$tmp/$name.out" "$fx/golden/$name.out"
		cp "$tmp/$name.err" "$fx/golden/$name.err"
	fi
	check "$name: exit $want (got $status)" 0 "" -- test "$status" = "$want"
	check "$name: stdout as golden" 0 "" -- diff -u "$fx/golden/$name.out" "$tmp/$name.out"
	check "$name: stderr as golden" 0 "" -- diff -u "$fx/golden/$name.err" "$tmp/$name.err"
	if [ -s "$tmp/$name.out" ] && grep -q '^apiVersion: kars' "$tmp/$name.out"; then
		# only the kars objects: an upstream Sandbox is not a kars kind
		awk 'BEGIN{RS="---\n"; ORS="---\n"} /apiVersion: kars/' "$tmp/$name.out" >"$tmp/$name.kars"
		check "$name: every object validates" 0 'valid' -- "$kars" validate -f "$tmp/$name.kars"
	fi
}
mkdir -p "$fx/golden"

golden kagent-declarative 4 migrate from-kagent "$fx/kagent-declarative.yaml" --dry-run
golden kagent-declarative-allowed 0 migrate from-kagent "$fx/kagent-declarative.yaml" --allow-lossy --isolation confidential -n agents
golden kagent-byo 0 migrate from-kagent "$fx/kagent-byo.yaml" --allow-lossy --model azure-openai/gpt-4o-mini
golden kagent-byo-no-model 2 migrate from-kagent "$fx/kagent-byo.yaml" --allow-lossy
golden sandbox-native 4 convert -f "$fx/sandbox-full.yaml" --to karssandbox --dry-run --model azure-openai/gpt-4o
golden sandbox-translate 0 convert -f "$fx/sandbox-full.yaml" --to karssandbox --mode translate --allow-lossy
golden sandbox-observe 0 convert -f "$fx/sandbox-full.yaml" --to karssandbox --mode observe
golden sandbox-overlay 0 convert -f "$fx/sandbox-full.yaml" --to overlay --sandbox-ref prod/web-agent
golden sandbox-minimal 0 convert -f "$fx/sandbox-minimal.yaml" --to karssandbox
golden karssandbox-upstream 4 convert -f "$fx/karssandbox.yaml" --to upstream-sandbox --dry-run

# Lossy without --allow-lossy: nothing on stdout, the paths on stderr.
check "lossy: exit 4, nothing emitted" 4 'nothing emitted' -- "$kars" convert -f "$fx/sandbox-full.yaml" --to karssandbox
check "lossy: stdout empty" 0 '^0$' -- sh -c "\"$kars\" convert -f $fx/sandbox-full.yaml --to karssandbox 2>/dev/null | wc -c"
check "lossy: each path with its reason" 4 'lossy: Sandbox prod/web-agent: spec.volumeClaimTemplates: kars mounts' -- "$kars" convert -f "$fx/sandbox-full.yaml" --to karssandbox

# Round trip through the CLI.
"$kars" convert -f "$fx/sandbox-full.yaml" --to karssandbox --allow-lossy >"$tmp/ks.yaml" 2>/dev/null
check "round trip: only inferenceRef is lost on the way back" 4 '^lossy: KarsSandbox prod/web-agent: spec.inferenceRef: ' -- "$kars" convert -f "$tmp/ks.yaml" --to upstream-sandbox
check "round trip: one lossy line" 0 '^1$' -- sh -c "\"$kars\" convert -f $tmp/ks.yaml --to upstream-sandbox 2>&1 | grep -c '^lossy:'"

# --out-dir: one file per object, each valid, nothing else left behind.
check "--out-dir writes one file per object" 0 "^$tmp/out/toolpolicy-k8s-agent-k8s-delete-resource-[0-9a-f]{6}.yaml$" -- "$kars" migrate from-kagent "$fx/kagent-declarative.yaml" --allow-lossy --out-dir "$tmp/out"
check "--out-dir: 7 files, no temporaries" 0 '^7$' -- sh -c "ls -A $tmp/out | wc -l"
check "--out-dir: the files validate" 0 'karssandbox/k8s-agent valid' -- "$kars" validate -f "$tmp/out/karssandbox-k8s-agent.yaml"
check "--out-dir --dry-run writes nothing" 0 'kind: KarsSandbox' -- "$kars" convert -f "$fx/sandbox-minimal.yaml" --to karssandbox --out-dir "$tmp/out2" --dry-run
check "--out-dir --dry-run: no directory" 1 '' -- test -e "$tmp/out2"
check "--out-dir that cannot be made" 1 '/proc/kars' -- "$kars" convert -f "$fx/sandbox-minimal.yaml" --to karssandbox --out-dir /proc/kars
check "from stdin" 0 'kind: KarsSandbox' -- sh -c "\"$kars\" migrate from-kagent - --allow-lossy < $fx/kagent-declarative.yaml"

# Unreadable, wrong-kind and hostile input: exit 2, naming the document or line.
check "missing file" 2 'nope.yaml: No such file' -- "$kars" convert -f "$tmp/nope.yaml" --to karssandbox
printf 'apiVersion: agents.x-k8s.io/v1alpha1\nkind: Sandbox\nmetadata: {name: a}\nspec: {podTemplate: {spec: {containers: [{image: "a:1"}]}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n' >"$tmp/two.yaml"
check "wrong kind: the document index" 2 'two.yaml: document 2: v1/Pod is not a agents.x-k8s.io/v1alpha1/Sandbox' -- "$kars" convert -f "$tmp/two.yaml" --to karssandbox
check "a Sandbox is not a kagent Agent" 2 'document 1: agents.x-k8s.io/v1alpha1/Sandbox is not a kagent.dev/v1alpha2 Agent' -- "$kars" migrate from-kagent "$fx/sandbox-minimal.yaml"
printf 'a: &x [1,2]\nb: *x\n' >"$tmp/alias.yaml"
check "anchors and aliases refused" 2 'alias.yaml: YAML line 2, column 4: aliases' -- "$kars" migrate from-kagent "$tmp/alias.yaml"
python3 -c "
print('a0: &a0 [x,x,x,x,x,x,x,x,x]')
for i in range(1, 9): print(f'a{i}: &a{i} [' + ','.join([f'*a{i-1}'] * 9) + ']')" >"$tmp/lol.yaml"
check "billion laughs refused" 2 'lol.yaml: YAML line 2.*aliases' -- "$kars" convert -f "$tmp/lol.yaml" --to karssandbox
python3 -c "print('a:' + ' [' * 100 + ' ]' * 100)" >"$tmp/deep.yaml"
check "nesting bomb refused" 2 'nested deeper than 64 levels' -- "$kars" migrate from-kagent "$tmp/deep.yaml"
head -c 17000000 /dev/zero | tr '\0' 'a' >"$tmp/huge.yaml"
check "a huge document refused" 2 'larger than 16 MiB' -- "$kars" migrate from-kagent "$tmp/huge.yaml"
printf 'apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata: {name: a}\nspec: {type: Declarative, declarative: {tools: {a: 1}}}\n' >"$tmp/type.yaml"
check "a wrong type names the field" 2 'spec.declarative.tools: expected a list' -- "$kars" migrate from-kagent "$tmp/type.yaml" --model m
printf 'apiVersion: kagent.dev/v1alpha2\nkind: Agent\nmetadata: {name: a}\nspec: {type: Declarative, declarative: {}}\n' >"$tmp/nomodel.yaml"
check "no model: refused, not an invalid policy" 2 'no model: ModelConfig "default-model-config" is not in the input' -- "$kars" migrate from-kagent "$tmp/nomodel.yaml"
check "a bad --model" 2 'provider must be a DNS label' -- "$kars" migrate from-kagent "$tmp/nomodel.yaml" --model 'Azure OpenAI/x'
check "usage: convert without --to" 2 'usage: kars convert' -- "$kars" convert -f "$fx/sandbox-minimal.yaml"
check "usage: --sandbox-ref without a mode that uses it" 2 'sandbox-ref names the upstream' -- "$kars" convert -f "$fx/sandbox-minimal.yaml" --to karssandbox --sandbox-ref a/b
check "--help documents the exit codes" 0 '4 lossy' -- "$kars" --help

# to-overlay / to-native against the store.
"$kars" convert -f "$fx/sandbox-minimal.yaml" --to karssandbox >"$tmp/hello.yaml" 2>/dev/null
check "apply the converted sandbox" 0 'karssandbox.kars.azure.com/hello created' -- "$kars" apply -f "$tmp/hello.yaml"
check "to-overlay needs a reference" 2 'pass --upstream-ref' -- "$kars" migrate to-overlay hello
check "to-overlay --dry-run prints, writes nothing" 0 'sigsAgentSandbox: overlay' -- "$kars" migrate to-overlay hello --upstream-ref default/hello --dry-run
check "still native after the dry run" 1 '' -- sh -c "\"$kars\" get cs hello -o yaml | grep overlay"
check "to-overlay" 0 'karssandbox.kars.azure.com/hello patched \(overlay\)' -- "$kars" migrate to-overlay hello --upstream-ref default/hello
check "to-overlay again: unchanged" 0 'hello unchanged \(overlay\)' -- "$kars" migrate to-overlay hello
check "stored in overlay mode, with its reference" 0 'upstreamSandboxRef: default/hello' -- "$kars" get cs hello -o yaml
check "to-native" 0 'hello patched \(native\)' -- "$kars" migrate to-native hello
check "native: the reference is gone" 1 '' -- sh -c "\"$kars\" get cs hello -o yaml | grep upstreamSandboxRef"
check "to-native of a missing sandbox" 1 'Error from server \(NotFound\)' -- "$kars" migrate to-native nope
check "an invalid reference is refused by the store" 1 'Invalid.*upstreamSandboxRef' -- "$kars" migrate to-overlay hello --upstream-ref 'Bad/Ref!'

e2e_summary
