#!/usr/bin/env bash
# The console's alert queue with 100,000 alerts in the store (issue 18):
#  console:  Debian's chromium (playwright-core) loads /console/#/alerts,
#            signed in, N times; the time from navigation until the first
#            page of the queue (500 rows) is on screen, and the API call's
#            own time inside the browser (Resource Timing);
#  baseline: the same API call without the console (GET /v1/alerts?limit=500,
#            node's https client, keep-alive, same node, same run);
#  p50 and p95 of each, and the ratios console / baseline.
#
#   bench/console_bench.sh [--alerts N] [--runs N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

ALERTS=100000
RUNS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --alerts) ALERTS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "console_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "console_bench: FAIL: $*" >&2; exit 1; }
log() { echo "console_bench: $*" >&2; }

scripts/build femtoguard >/dev/null || fail "build"
FG="$ROOT/${BUILD_DIR:-build}/src/cli/femtoguard"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed"
[ -d console/node_modules/playwright-core ] || fail "run npm ci in console/ (scripts/setup does)"

W=$(mktemp -d /tmp/fg-console-bench.XXXXXX)
SERVE_PID=""
cleanup() { stop_tree "$SERVE_PID"; rm -rf "$W"; }
trap cleanup EXIT

PORT=$(( 30000 + RANDOM % 15000 ))
TLS_PORT=$(( PORT + 15000 ))
"$FG" init --data "$W/data" --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" >/dev/null
"$FG" ca cert --data "$W/data" --chain > "$W/chain.pem"
"$FG" token create --data "$W/data" --role operator --label bench 2>/dev/null | grep -o 'fgt_[A-Za-z0-9_]*' > "$W/operator.token"

# $ALERTS alerts as the detectors write them (a location.moving with its
# track every tenth, the rest cert.shared), spread over 30 days, a third
# awaiting approval: inserted straight into the store before serve starts.
log "$ALERTS alerts into the store"
NOW_MS=$(( $(date +%s) * 1000 ))
sqlite3 "$W/data/store.db" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ALERTS)
INSERT INTO alerts (id, ts_ms, rule, severity, device, json, state, actions_done, actions_pending,
                    updated_ms, seq, actions_skipped, false_positive)
SELECT printf('%016x', i), $NOW_MS - ($ALERTS - i) * 25920,
       CASE WHEN i % 10 = 0 THEN 'location.moving' ELSE 'cert.shared' END, 'high',
       printf('FG-%07d', i % 2000),
       CASE WHEN i % 10 = 0 THEN
         json_object('id', printf('%016x', i), 'ts', strftime('%Y-%m-%dT%H:%M:%fZ', ($NOW_MS - ($ALERTS - i) * 25920) / 1000.0, 'unixepoch'),
           'rule', 'location.moving', 'kind', 'track', 'severity', 'high', 'device', printf('FG-%07d', i % 2000),
           'subjects', json_array(), 'actions', json_array('terminate', 'notify'), 'approve', json_array('block', 'revoke'),
           'evidence', json_object('last_jump_kmh', 19.0, 'last_jump_m', 1604.0, 'source', 'gnss',
             'positions', json_array(
               json_object('acc_m', 30.0, 'from', '2025-03-03T15:40:44.317Z', 'to', '2025-03-03T15:40:44.317Z', 'lat', 37.46692657470703, 'lon', 127.02317810058594),
               json_object('acc_m', 8.0, 'from', '2025-03-03T15:45:44.317Z', 'to', '2025-03-03T16:25:44.317Z', 'lat', 37.461265563964844, 'lon', 126.99994659423828),
               json_object('acc_m', 32.0, 'from', '2025-03-03T16:30:44.317Z', 'to', '2025-03-03T16:30:44.317Z', 'lat', 37.47110366821289, 'lon', 126.98604583740234))))
       ELSE
         json_object('id', printf('%016x', i), 'ts', strftime('%Y-%m-%dT%H:%M:%fZ', ($NOW_MS - ($ALERTS - i) * 25920) / 1000.0, 'unixepoch'),
           'rule', 'cert.shared', 'kind', '', 'severity', 'high', 'device', printf('FG-%07d', i % 2000),
           'subjects', json_array(), 'actions', json_array('terminate', 'notify'), 'approve', json_array('block'),
           'evidence', json_object('basis', 'observed', 'cert_fp', 'sha256:cc556005c1be26b829d6942d7a6d927f5f9f8e936b02c862d63e6ce11e824056',
             'endpoint', '203.0.113.10:4500', 'other_device', 'FG-8000874', 'other_first_seen', '2025-03-03T15:40:14.317Z',
             'session', printf('spi-%016x', i), 'src_ip', '192.0.2.233'))
       END,
       CASE WHEN i % 3 = 0 THEN 'pending_approval' ELSE 'acted' END,
       CASE WHEN i % 3 = 0 THEN '[]' ELSE '["terminate"]' END,
       CASE WHEN i % 3 = 0 THEN CASE WHEN i % 10 = 0 THEN '["block","revoke"]' ELSE '["block"]' END ELSE '[]' END,
       $NOW_MS, i, '[]', 0
FROM n;
SQL
[ "$(sqlite3 "$W/data/store.db" 'SELECT COUNT(*) FROM alerts')" = "$ALERTS" ] || fail "the alerts did not all go in"

"$FG" serve --data "$W/data" --threads 2 > "$W/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$W/serve.log"; fail "serve did not start"; }

log "$RUNS loads of the queue in chromium, $RUNS API calls alone"
node bench/console_bench.mjs --origin "https://127.0.0.1:$TLS_PORT" --ca "$W/chain.pem" \
  --token-file "$W/operator.token" --runs "$RUNS" --alerts "$ALERTS" --work "$W"
