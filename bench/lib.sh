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

# A PostgreSQL 15 server of the harness's own, for benchmarks on the cluster
# store (issue 15): initdb in DIR (owned by the postgres user: initdb refuses
# root), listening on 127.0.0.1:PORT and a socket in DIR, fsync on (what
# production runs), inside the harness's namespace when the caller defines
# `inns`, and a database "femtoguard". Prints the store URL. pg_bench_stop
# stops it by its data dir (pg_ctl stop -m fast), the only server it touches.
PG_BIN=/usr/lib/postgresql/15/bin
pg_bench_start() {  # dir port -> store URL on stdout
  local dir=$1 port=$2
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL 15 is not installed (scripts/setup: postgresql-15)" >&2; return 1; }
  mkdir -p "$dir"
  chown postgres: "$dir"
  chmod 700 "$dir"
  # Every directory above DIR must let the postgres user through.
  local up
  up=$(dirname "$dir")
  while [ "$up" != / ]; do chmod o+x "$up" 2>/dev/null || true; up=$(dirname "$up"); done
  runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/db" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  inns runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/db" -l "$dir/postgres.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null \
    || { cat "$dir/postgres.log" >&2; return 1; }
  inns runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres femtoguard \
    || return 1
  echo "postgresql://postgres@127.0.0.1:$port/femtoguard"
}
pg_bench_stop() {  # dir
  [ -f "$1/db/postmaster.pid" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$1/db" -m fast -w stop >/dev/null 2>&1 || true
}

# ---- NATS JetStream for the stream benchmarks (the caller sets W, defines
# fail, and stops NATS_PIDS on exit) ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A fresh 3-node cluster for each JetStream run (an empty stream each time).
NATS_URLS=""
nats_start() {
  rm -rf "$W/nats"; mkdir -p "$W/nats"
  local cp=() p=() m=() i routes
  for i in 0 1 2; do cp[$i]=$(free_port); p[$i]=$(free_port); m[$i]=$(free_port); done
  NATS_URLS=""; NATS_PIDS=()
  for i in 0 1 2; do
    routes=""
    for j in 0 1 2; do [ "$j" = "$i" ] || routes="$routes nats-route://127.0.0.1:${cp[$j]}"; done
    cat > "$W/nats/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${p[$i]}
http: 127.0.0.1:${m[$i]}
jetstream { store_dir: "$W/nats/store-$i", max_file_store: 8GB }
cluster { name: fgbench, listen: 127.0.0.1:${cp[$i]}, routes: [$(echo $routes | tr ' ' ',')] }
EOF
    /usr/sbin/nats-server -c "$W/nats/n$i.conf" > "$W/nats/n$i.log" 2>&1 &
    NATS_PIDS+=($!)
    NATS_URLS="${NATS_URLS:+$NATS_URLS,}nats://127.0.0.1:${p[$i]}"
  done
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:${m[0]}/jsz" | grep -q '"leader": *"n' && return 0
    sleep 0.1
  done
  fail "no JetStream meta leader: $(tail -5 "$W/nats/n0.log")"
}
nats_stop() { for p in "${NATS_PIDS[@]}"; do stop_tree "$p"; done; NATS_PIDS=(); }

cpu_ticks() {  # pids... -> utime+stime summed, in clock ticks
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)
