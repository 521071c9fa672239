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

# Waits for / until nothing listens on a TCP port inside the harness's
# namespace (the caller defines `inns CMD...` and `fail MESSAGE`).
wait_listen() {  # port name log
  for _ in $(seq 1 100); do
    if inns ss -ltnH "sport = :$1" | grep -q .; then return 0; fi
    sleep 0.1
  done
  cat "$3" >&2
  fail "$2 is not listening on port $1 after 10 s"
}
wait_gone() {  # port
  for _ in $(seq 1 50); do
    inns ss -ltnH "sport = :$1" | grep -q . || return 0
    sleep 0.1
  done
  fail "port $1 still in use after 5 s"
}
