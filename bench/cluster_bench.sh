#!/usr/bin/env bash
# What a second node costs and brings, on one PostgreSQL database (issue 15),
# same run, same machine:
#   (a) OCSP responses/s: one node taking all the load, against two nodes
#       (the second joined with `node bundle` / `node join`) taking half each;
#   (b) the reconnect storm: every femtocell in service asks POST
#       /v1/admission once (bench/http_storm, 64 keep-alive connections),
#       against one node, then split over two nodes.
# Everything shares this machine's cores (2 on the reference machine), so the
# second node adds no CPU: the figures say what the cluster's own work (change
# follower, heartbeats, a second snapshot) costs, as a ratio of totals.
#
#   bench/cluster_bench.sh [--devices N] [--ocsp-devices M] [--duration S]
#
# Defaults: 189,000 femtocells (the seed operator's fleet) for the storm, 64
# certificates for OCSP, 10 s per wrk run. PostgreSQL 15 is started by the
# harness (bench/lib.sh pg_bench_start, fsync on) in a network namespace of
# its own, with both nodes; needs root. Cleans up after itself; exits non-zero
# when a check fails (a wrong OCSP status, a storm answer other than allow).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
cd "$ROOT"

DEVICES=189000
OCSP_DEVICES=64
DURATION=10
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) DEVICES=${2:-}; shift 2 ;;
    --ocsp-devices) OCSP_DEVICES=${2:-}; shift 2 ;;
    --duration) DURATION=${2:-}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "cluster_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in DEVICES OCSP_DEVICES DURATION; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "cluster_bench: --${v,,} needs a number" >&2; exit 2; }
done
[ "$OCSP_DEVICES" -ge 2 ] && [ "$OCSP_DEVICES" -le 2000 ] || { echo "cluster_bench: --ocsp-devices 2..2000" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "cluster_bench: needs root (ip netns, PostgreSQL as its own user)" >&2; exit 2; }

scripts/build femtoguard http_storm >/dev/null || { echo "cluster_bench: FAIL: build" >&2; exit 1; }
for tool in wrk openssl curl jq ip; do
  command -v "$tool" >/dev/null || { echo "cluster_bench: $tool missing (scripts/setup)" >&2; exit 2; }
done
TCK=$(getconf CLK_TCK)

W=$(mktemp -d /tmp/fgcluster.XXXXXX)
NS="fgcl-$$"
NS_CREATED=0
A_PID=""
B_PID=""
cleanup() {
  stop_tree "$A_PID"
  stop_tree "$B_PID"
  pg_bench_stop "$W/pg"
  if [ "$NS_CREATED" = 1 ]; then
    local p
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns delete "$NS" 2>/dev/null || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "cluster_bench: FAIL: $*" >&2; exit 1; }
log() { printf '== %s\n' "$*" >&2; }
inns() { ip netns exec "$NS" "$@"; }

mkdir -p "$W/bin"
cp "$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard" "$ROOT/${BUILD_DIR:-build}/bench/http_storm" "$W/bin/"
FG="$W/bin/femtoguard"
STORM="$W/bin/http_storm"
ip netns add "$NS"
NS_CREATED=1
inns ip link set lo up
export FEMTOGUARD_CA_PASSPHRASE="femtoguard-bench-$$"

STORE=$(pg_bench_start "$W/pg" 18450) || fail "PostgreSQL did not start"
A_PORT=18440; B_PORT=18441
log "node A: init --store (PostgreSQL 15, fsync on); node B: node bundle + node join"
inns "$FG" init --data "$W/a" --store "$STORE" --listen "127.0.0.1:$A_PORT" --tls-listen 127.0.0.1:18444 \
  --public-url "http://127.0.0.1:$A_PORT" >/dev/null || fail "init"
inns "$FG" node bundle --data "$W/a" --out "$W/bundle" >/dev/null || fail "node bundle"
inns "$FG" node join --data "$W/b" --store "$STORE" --bundle "$W/bundle" --public-url "http://127.0.0.1:$B_PORT" \
  --url-order 1 --listen "127.0.0.1:$B_PORT" --tls-listen 127.0.0.1:18445 >/dev/null || fail "node join"
for d in a b; do sed -i "s/plain_http: false/plain_http: true/" "$W/$d/config.yaml"; done
OPER=$(inns "$FG" token create --data "$W/a" --role operator --label bench 2>/dev/null)
SEGW=$(inns "$FG" token create --data "$W/a" --role segw --label bench 2>/dev/null)
inns "$FG" ca cert --data "$W/a" --chain > "$W/chain.pem"
inns "$FG" ca cert --data "$W/a" > "$W/issuing.pem"

start_node() {  # a|b port -> pid on stdout (ip netns exec execs serve: the pid is serve's)
  ip netns exec "$NS" "$FG" serve --data "$W/$1" --threads 2 >> "$W/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do inns curl -sf "http://127.0.0.1:$2/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  inns curl -sf "http://127.0.0.1:$2/healthz" >/dev/null || { tail -20 "$W/$1.log" >&2; fail "node $1 did not start"; }
  echo "$pid"
}
cpu() {  # pid -> user+sys ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# ------------------------------------------------------------ (a) OCSP
log "(a) $OCSP_DEVICES devices with a certificate each (issued on node A), 1 revoked"
dev() { printf 'FGO-%05d' "$1"; }
for i in $(seq 1 "$OCSP_DEVICES"); do
  d=$(dev "$i")
  inns "$FG" device add --data "$W/a" --device "$d" --status active >/dev/null 2>&1 || fail "device add $d"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$d.key" -out "$W/$d.csr" \
    -subj "/CN=$d" 2>/dev/null || fail "openssl req"
  inns "$FG" cert issue --data "$W/a" --device "$d" --csr "$W/$d.csr" > "$W/$d.pem" 2>/dev/null || fail "cert issue $d"
  openssl ocsp -issuer "$W/issuing.pem" -cert "$W/$d.pem" -no_nonce -reqout "$W/req$i.der" >/dev/null 2>&1
done
REV=$(dev 1)
inns "$FG" cert revoke --data "$W/a" --serial "$(openssl x509 -in "$W/$REV.pem" -noout -serial | cut -d= -f2)" \
  --reason keyCompromise >/dev/null 2>&1 || fail "cert revoke"
cat > "$W/ocsp.lua" <<LUA
local reqs = {}
for i = 1, $OCSP_DEVICES do
  local f = assert(io.open("$W/req" .. i .. ".der", "rb"))
  reqs[i] = wrk.format("POST", "/ocsp", { ["Content-Type"] = "application/ocsp-request" }, f:read("*a"))
  f:close()
end
local n = 0
request = function() n = n % #reqs + 1; return reqs[n] end
LUA
A_PID=$(start_node a "$A_PORT")
B_PID=$(start_node b "$B_PORT")
check() {  # port device want
  local out
  out=$(inns openssl ocsp -url "http://127.0.0.1:$1/ocsp" -issuer "$W/issuing.pem" -CAfile "$W/chain.pem" \
        -cert "$W/$2.pem" -no_nonce 2>&1)
  grep -q "^Response verify OK" <<<"$out" && grep -q ": $3\$" <<<"$out" || { echo "$out" >&2; fail "OCSP on :$1 for $2, want $3"; }
}
for port in "$A_PORT" "$B_PORT"; do check "$port" "$REV" revoked; check "$port" "$(dev 2)" good; done
wrk_rps() {  # connections port -> rps (fails on any non-2xx answer or socket error)
  local out
  out=$(inns wrk -t1 -c"$1" -d"${DURATION}s" -s "$W/ocsp.lua" "http://127.0.0.1:$2/")
  echo "$out" >> "$W/wrk.log"
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "$out" >&2; fail "wrk on :$2: errors"; fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
# The same client both times (two wrk processes of 32 connections each):
# first both at node A while B runs idle (it follows the feed, heartbeats),
# then one at A and one at B.
wrk_pair() {  # port1 port2 -> total rps
  ( wrk_rps 32 "$1" > "$W/r1" ) & local w1=$!
  ( wrk_rps 32 "$2" > "$W/r2" ) & local w2=$!
  wait "$w1" "$w2" || fail "wrk"
  awk '{ s += $1 } END { print s }' "$W/r1" "$W/r2"
}
c0=$(( $(cpu "$A_PID") + $(cpu "$B_PID") ))
one=$(wrk_pair "$A_PORT" "$A_PORT")
c1=$(( $(cpu "$A_PID") + $(cpu "$B_PID") ))
two=$(wrk_pair "$A_PORT" "$B_PORT")
c2=$(( $(cpu "$A_PID") + $(cpu "$B_PID") ))
per_cpu() { awk -v r="$1" -v t="$2" -v hz="$TCK" -v d="$DURATION" 'BEGIN { c = t / hz; printf "%.0f", (c > 0 ? r * d / c : 0) }'; }
ocsp_one_eff=$(per_cpu "$one" $((c1 - c0)))
ocsp_two_eff=$(per_cpu "$two" $((c2 - c1)))
for port in "$A_PORT" "$B_PORT"; do check "$port" "$REV" revoked; done
stop_tree "$A_PID"; A_PID=""
stop_tree "$B_PID"; B_PID=""

# ------------------------------------------------------------ (b) storm
log "(b) fleet of $DEVICES femtocells (femtoguard sim, benign world), imported on node A"
"$FG" sim --scenario benign --devices "$DEVICES" --seed 11 --days 1 --out "$W/world" >/dev/null
t0=$(date +%s.%N)
inns "$FG" device import --data "$W/a" --registry "$W/world/registry.jsonl" >/dev/null || fail "device import"
import_s=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
jq -nc 'foreach (inputs | select(.status == "active" and .prefixes and (.prefixes|length) > 0)) as $d (0; . + 1;
    ($d.prefixes[0] | split("/")) as $p |
    ($p[0] | split(".") | map(tonumber) | .[0] * 16777216 + .[1] * 65536 + .[2] * 256 + .[3]) as $base |
    (pow(2; 32 - ($p[1] | tonumber)) | floor) as $size |
    ($base + 1 + (. % ([$size - 2, 1] | max))) as $ip |
    {device: $d.device, session: ("storm-" + $d.device), cert_fp: "",
     src_ip: "\($ip / 16777216 | floor).\($ip / 65536 | floor % 256).\($ip / 256 | floor % 256).\($ip % 256)",
     endpoint: "segw1", segw: "segw1"})' "$W/world/registry.jsonl" > "$W/storm.bodies"
N=$(wc -l < "$W/storm.bodies")
split -n l/2 -d "$W/storm.bodies" "$W/half."
allowed() {  # port -> allow decisions counted by that node
  inns curl -sf -H "Authorization: Bearer $OPER" "http://127.0.0.1:$1/metrics" |
    awk 'index($1, "femtoguard_admission_decisions_total{decision=\"allow\"}") == 1 { s += $2 } END { print s + 0 }'
}
storm_secs() { awk '{ print $4 }' <<<"$1"; }

A_PID=$(start_node a "$A_PORT")
B_PID=$(start_node b "$B_PORT")
log "storm on node A alone ($N femtocells in service)"
s1=$(inns "$STORM" 127.0.0.1 "$A_PORT" /v1/admission "$SEGW" "$W/storm.bodies" 64) || fail "storm: $s1"
[ "$(allowed "$A_PORT")" -eq "$N" ] || fail "storm on A: $(allowed "$A_PORT") allowed, expected $N"
one_s=$(storm_secs "$s1")
# Restart both: the storm's sessions never end (no SeGW reports them down).
stop_tree "$A_PID"; stop_tree "$B_PID"
A_PID=$(start_node a "$A_PORT")
B_PID=$(start_node b "$B_PORT")
log "storm split over nodes A and B (32 connections each)"
t0=$(date +%s.%N)
( inns "$STORM" 127.0.0.1 "$A_PORT" /v1/admission "$SEGW" "$W/half.00" 32 > "$W/sa" ) & pa=$!
( inns "$STORM" 127.0.0.1 "$B_PORT" /v1/admission "$SEGW" "$W/half.01" 32 > "$W/sb" ) & pb=$!
wait "$pa" "$pb" || fail "split storm"
two_s=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
got=$(( $(allowed "$A_PORT") + $(allowed "$B_PORT") ))
[ "$got" -eq "$N" ] || fail "split storm: $got allowed, expected $N"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
cat <<OUT
cluster_bench ($(date -u +%FT%TZ), $(nproc) CPUs, PostgreSQL 15 on the same machine, serve --threads 2 per node)
  (a) OCSP, $OCSP_DEVICES certificates, wrk ${DURATION}s:
      one node (2 x wrk -t1 -c32 at A; B running idle)  $one resp/s, $ocsp_one_eff per CPU-second of both nodes
      two nodes (wrk -t1 -c32 at each)                  $two resp/s, $ocsp_two_eff per CPU-second of both nodes
      two / one: $(ratio "$two" "$one")x (wall), $(ratio "$ocsp_two_eff" "$ocsp_one_eff")x (per CPU-second); target: the second node costs < 10 % (>= 0.90x)
  (b) reconnect storm, $N femtocells in service of $DEVICES (import on PostgreSQL: $import_s s):
      one node:  $one_s s = $(awk -v n="$N" -v s="$one_s" 'BEGIN { printf "%.0f", n / s }')/s
      two nodes: $two_s s = $(awk -v n="$N" -v s="$two_s" 'BEGIN { printf "%.0f", n / s }')/s  (two / one: $(ratio "$one_s" "$two_s")x the rate)
  every answer checked: OCSP good/revoked on both nodes before and after; every storm request allowed, counted by the nodes' own metrics.
OUT
