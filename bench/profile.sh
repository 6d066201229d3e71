#!/usr/bin/env bash
# Profiles of the benchmark cases that miss their targets, written to bench/profiles/*.txt.
# Needs: perf (Debian linux-perf; `perf record -e cpu-clock` works where hardware counters do
# not), py-spy in the SecantusDB venv (target/xtask/venv/bin/pip install py-spy), release builds
# of both bench binaries (`cargo xtask bench --quick` makes them), and no other load.
#
#   bench/profile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/profiles
mkdir -p "$out"
bench=target/release/databank-bench
anchors=target/release/databank-bench-anchors

# Servers on free ports, as the benchmarks get them.
eval "$(cargo xtask services up redis mongo | grep '^DATABANK' | sed 's/ *#.*//; s/^/export /')"
export DATABANK_TEST_MONGO_KIND=secantus
trap 'cargo xtask services down >/dev/null' EXIT
state=target/xtask/services.txt
redis_pid=$(awk '$1=="redis" && $4=="pid" {print $5}' "$state" | tail -1)
mongo_pid=$(awk '$1=="mongo" && $4=="pid" {print $5}' "$state" | tail -1)
redis_port=${DATABANK_TEST_REDIS_URL##*:}
redis_port=${redis_port%%/*}
commandstats() { # server time per call of each command since the last reset
  redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' | grep '^cmdstat_' |
    sed 's/^cmdstat_//; s/:calls=/  calls=/' | sort -t= -k3 -rn
}

top() { # top symbols of a perf data file, by self time
  perf report -i "$1" --stdio --no-children --sort dso,sym 2>/dev/null |
    grep -E '^ +[0-9]+\.[0-9]+%' | head -"${2:-25}" || true
}

# 1. Redis: our read/save against GET/SET; the server is the shared resource, so profile it
#    (perf for where its CPU goes, INFO commandstats for the time each command costs it).
redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
perf record -q -e cpu-clock -g -p "$redis_pid" -o /tmp/redis-server.data &
rec=$!
"$bench" --only overhead --backend redis --out /tmp/profile-run >/dev/null
kill -INT $rec; wait $rec || true
{
  echo "# redis-server during section 2 (ours read/save vs GET/SET, c=1 and c=32)"
  echo "## INFO commandstats (usec_per_call = server time per call)"
  commandstats
  echo "## perf, redis-server CPU by symbol"
  top /tmp/redis-server.data 30
} >"$out/redis-overhead-server.txt"

# 2. Session store on memory and Redis against the tower-sessions stores: our process.
perf record -q -e cpu-clock -g -o /tmp/anchors-memory.data -- "$anchors" --only per-request --backend memory --out /tmp/profile-run >/dev/null
{ echo "# databank-bench-anchors, section 3 on memory (ours and MemoryStore/moka alternate)"; top /tmp/anchors-memory.data 40; } >"$out/session-memory-client.txt"
redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
perf record -q -e cpu-clock -g -p "$redis_pid" -o /tmp/redis-sessions.data &
rec=$!
"$anchors" --only per-request,e2e --backend redis --out /tmp/profile-run >/dev/null
kill -INT $rec; wait $rec || true
{
  echo "# redis-server during section 3 (redis) and section 4 (ours and fred alternate)"
  echo "## INFO commandstats (ours: hgetall + evalsha; fred: get + set)"
  commandstats
  echo "## perf, redis-server CPU by symbol"
  top /tmp/redis-sessions.data 30
} >"$out/session-redis-server.txt"

# 3. MongoDB save against replace_one(upsert): SecantusDB is Python; py-spy shows its time.
py=target/xtask/venv/bin/py-spy
if [ -x "$py" ]; then
  "$py" record --nonblocking -r 200 -f raw -p "$mongo_pid" -o /tmp/secantus.raw -d 60 >/dev/null 2>&1 &
  rec=$!
  "$bench" --only overhead --backend mongo --out /tmp/profile-run >/dev/null || true
  kill -INT $rec 2>/dev/null; wait $rec || true
  {
    echo "# SecantusDB (py-spy, self samples by function) during section 2 on MongoDB"
    awk '{n=$NF; $NF=""; k=split($0, f, ";"); split(f[k], g, " \\("); s[g[1]]+=n; t+=n}
         END {for (x in s) printf "%6.2f%%  %s\n", 100*s[x]/t, x}' /tmp/secantus.raw | sort -rn | head -30
  } >"$out/mongo-save-server.txt"
fi

# 4. Disk: our durable save against the hand-written loop; our process.
perf record -q -e cpu-clock -g -o /tmp/disk.data -- "$bench" --only overhead --backend disk --out /tmp/profile-run >/dev/null
{ echo "# databank-bench, section 2 on disk (ours and the std::fs loop alternate)"; top /tmp/disk.data 40; } >"$out/disk-save-client.txt"
echo "profiles in $out"
