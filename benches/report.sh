#!/usr/bin/env bash
# Runs the benches that hold migrate's claims and writes BENCHMARKS.md: every
# figure with its target and whether it was met, the machine it ran on, the
# date, and each bench's whole output. Benches print figures (a `result:`
# line each) and assert nothing about speed; this script only collects them.
#
#   bash benches/report.sh            # about 5-10 minutes on a 2-core machine
#
# Needs kubectl and openssl on PATH (the runbook bench runs the real
# kubectl). Set-up knobs pass through: APPLY_BENCH_ROUNDS (default here 2),
# RUNBOOK_CLUSTERS, RESUME_STEPS, ... (see each bench's header).
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export APPLY_BENCH_ROUNDS=${APPLY_BENCH_ROUNDS:-2}

echo "report: building the benches" >&2
# Only these benches: a bare `cargo bench` would also build every test harness optimised.
{
    cargo bench --locked --bench plan_scale --bench apply_critical_path --bench runbook --bench resume --no-run &&
        cargo bench --locked -p meshsim --bench get_throughput --no-run
} >"$out/build.log" 2>&1 || {
    tail -40 "$out/build.log" >&2
    exit 1
}

benches=(plan_scale apply_critical_path runbook resume get_throughput)
run() {
    local name=$1
    shift
    echo "report: $name" >&2
    local start=$SECONDS
    if ! "$@" >"$out/$name.txt" 2>"$out/$name.err"; then
        echo "report: $name failed" >&2
        tail -40 "$out/$name.txt" "$out/$name.err" >&2
        exit 1
    fi
    echo $((SECONDS - start)) >"$out/$name.secs"
}
run plan_scale cargo bench --locked --bench plan_scale
run apply_critical_path cargo bench --locked --bench apply_critical_path
run runbook cargo bench --locked --bench runbook
run resume cargo bench --locked --bench resume
run get_throughput cargo bench --locked -p meshsim --bench get_throughput

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"

{
    echo "# Benchmarks"
    echo
    echo "Written by \`bash benches/report.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit."
    echo "Every figure comes from a \`cargo bench\` bench (release profile); the benches print"
    echo "figures and assert nothing about speed. Run the script again to refresh this file."
    echo
    echo "## Machine"
    echo
    echo "- CPUs: $(nproc) ($cpu)"
    echo "- Memory: $mem"
    echo "- OS: $os, kernel $(uname -r)"
    echo "- $(rustc --version)"
    echo "- kubectl $(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -1)"
    echo
    echo "## Figures"
    echo
    echo "| figure | value | target | |"
    echo "|---|---|---|---|"
    for b in "${benches[@]}"; do
        sed -n 's/^result: \(.*\)$/| \1 |/p' "$out/$b.txt"
    done
    echo
    echo "## What each bench does"
    echo
    echo "- **plan_scale**: the planner on generated specs, 100 clusters with 2,000 DestinationRules and"
    echo "  200 with 4,000, two topologies; best of five; peak heap by a counting allocator."
    echo "- **apply_critical_path**: a migration-shaped plan through the engine against 10 simulated"
    echo "  clusters with 20 ms latency per request; wall time against the longest chain of measured"
    echo "  step durations, the sled store (every transition fsynced) against the in-memory one;"
    echo "  \`fast\` (ConfigMaps only) and \`realistic\` (Deployments rolled out, pods ready after 1 s)."
    echo "  $APPLY_BENCH_ROUNDS rounds per store plus a warm-up (the bench's default is 3)."
    echo "- **runbook**: the same 10-cluster multi-primary migration on meshsim (20 ms latency, pods"
    echo "  ready after 1 s) with \`migrate apply\` (the release binary) and with"
    echo "  [benches/runbook/multi-primary.sh](benches/runbook/multi-primary.sh), the runbook's kubectl and"
    echo "  istioctl commands cluster after cluster; one run each, then both meshes are checked for the"
    echo "  same facts (istiod clusterName, network label, cacerts under the source's root, east-west"
    echo "  gateway address, cross-network Gateway, every remote secret, istiod reporting each synced)."
    echo "  The script does less than migrate: no preflight checks, snapshots or checkpoints, no wait"
    echo "  for istio-ca-root-cert to carry the root, no istiod restart after each remote secret (migrate"
    echo "  restarts it for Istio before 1.31, which keeps a stale view of a secret that changes), one"
    echo "  reader token per cluster rather than per pair; it builds each remote secret with kubectl"
    echo "  (read the reader token, print the Secret: two commands per pair, as"
    echo "  \`istioctl create-remote-secret | kubectl apply\`), since the simulator's istioctl stand-in has"
    echo "  no create-remote-secret. migrate's phase spans (from its \`-o json\` events) are in its output."
    echo "- **resume** (two rows): a 10,000-step run, all done but 10; the time from opening the store to"
    echo "  the engine's first action of \`apply --resume\`, on sled (<= 100 ms) and on the Kubernetes backend"
    echo "  over meshsim with 5 ms latency per request (<= 1 s; its log: the run as \`state push\` writes it,"
    echo "  then the last 100 steps' entries), each with where the time goes. Opening sled checks each run"
    echo "  against the journal's index (kept in the journal's own transactions): the step records read once"
    echo "  for their digest, no event; the engine reads the step states once, and the stored plan's header"
    echo "  (its steps skipped unparsed) while the clusters report their identities. The \`alone:\` lines"
    echo "  time reads by themselves, those a resume makes before it acts and the journal scans it no longer makes."
    echo "- **get_throughput** (meshsim): GETs per second over HTTPS on loopback, 4 kube clients with"
    echo "  8 requests in flight each, 5 s."
    echo
    echo "## Output"
    for b in "${benches[@]}"; do
        echo
        echo "### $b ($(cat "$out/$b.secs") s)"
        echo
        echo '```'
        cat "$out/$b.txt"
        echo '```'
    done
} >BENCHMARKS.md
echo "report: wrote BENCHMARKS.md" >&2
