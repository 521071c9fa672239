# Shared by the benchmark harnesses; sourced, not run.

# Stops one process the harness started and its direct children (openssl
# -multi forks its workers), by pid: TERM, up to 3 s, then KILL.
stop_tree() {
  local pid=$1 kids all p
  [ -n "$pid" ] || return 0
  kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  all="$pid $kids"
  for p in $all; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    local alive=0
    for p in $all; do
      if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in $all; do kill -9 "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}
