#!/usr/bin/env bash
# Several RX queues (a veth pair with 2 queues each way). veth has no RSS
# (ETHTOOL_GRSSH: not supported), so the sensor cannot know that both
# directions of a flow reach one queue: it must say so and re-shard in
# software (one thread meters every queue, or --threads N: one reader, the
# flows hashed onto N shards). With the RSS assumed symmetric
# (--assume-symmetric-rss, the sender pinned to one CPU so veth puts a flow on one queue)
# each queue runs to completion on its own thread. Every case meters
# the plan exactly, with one AF_XDP socket per queue.
#
#   live_multiqueue_test.sh SENSOR SENDER XDP_MODE      XDP_MODE: generic | native
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2 XDP_MODE=${3:-generic}
source "$here/netns_lib.sh"
LIVE_QUEUES=2 live_begin
[[ -e /sys/class/net/$LIVE_HOST/queues/rx-1 ]] || { echo "FAIL: veth has no second RX queue"; exit 1; }

fail() { echo "FAIL: $*"; cat "$LIVE_TMP"/*.err; exit 1; }

# run_case NAME THREADS PATTERN SENSOR_ARGS...: start, send the plan, stop,
# check the records, the counters and the line that says how queues map to threads.
run_case() {
  local name=$1 threads=$2 pattern=$3; shift 3
  live_start_sensor "$name" --capture xdp --xdp-mode "$XDP_MODE" --json --stats-json "$LIVE_TMP/$name.stats" "$@"
  grep -q -- "$pattern" "$LIVE_TMP/$name.err" || fail "$name: no '$pattern'"
  grep -q "capturing on $LIVE_HOST with xdp ($XDP_MODE), queue 0:copy queue 1:copy" "$LIVE_TMP/$name.err" ||
    fail "$name: no per-queue report"
  if [[ -n ${SPLIT:-} ]]; then
    # The plan once from CPU 0 and once from CPU 1: veth puts them on queues
    # 0 and 1, so every flow has frames on both queues.
    LIVE_SEND_PREFIX="taskset -c 0" live_send_plan
    LIVE_SEND_PREFIX="taskset -c 1" live_send_plan
  else
    live_send_plan
  fi
  sleep 0.5
  live_stop_sensor
  if [[ -n ${SPLIT:-} ]]; then
    /usr/bin/python3 -c 'import json,sys; q=json.load(open(sys.argv[1]))["live"]["queues"]; sys.exit(0 if [x["rx_packets"] for x in q]==[30,30] else "frames per queue: %s" % [x["rx_packets"] for x in q])' \
      "$LIVE_TMP/$name.stats" || fail "$name: the plan did not reach both queues"
  fi
  /usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/$name.out" "$LIVE_TMP/$name.stats" --front-end xdp \
    --xdp-mode "$XDP_MODE" --queues 2 --threads "$threads" --repeat "${REPEAT:-1}" || fail "$name: records/counters"
  grep -q '"rss":{"checked":false,"symmetric":false,"note":"2 RX queues but the RSS key cannot be read' "$LIVE_TMP/$name.stats" ||
    [[ $name == per-queue ]] || fail "$name: rss note not in stats"
  if ip -d link show "$LIVE_HOST" | grep -q "prog/xdp"; then fail "$name: XDP program left attached"; fi
  echo "PASS: $name"
}

run_case one-thread 1 "RSS key cannot be read (ETHTOOL_GRSSH: Operation not supported); re-sharding in software: one thread meters all 2 queues" \
  --threads 1
run_case reshard 2 "re-sharding in software: one thread reads the 2 queues, flows are hashed onto 2 shards" --threads 2
# Every flow split over both queues: one record per flow all the same, on
# one thread and on two shards (frames held across batches until decoded).
# Native only: in generic mode veth delivers every frame on queue 0.
if [[ $XDP_MODE == native && $(nproc) -ge 2 ]]; then
  SPLIT=1 REPEAT=2 run_case split-one-thread 1 "re-sharding in software: one thread meters all 2 queues" --threads 1
  SPLIT=1 REPEAT=2 run_case split-reshard 2 "flows are hashed onto 2 shards" --threads 2
else
  echo "NOTE: split-queue cases need native mode and two CPUs"
fi
run_case rss-flag 2 "re-sharding in software" --threads 2 --rss-symmetric
# The assumption holds only if a flow's frames all reach one queue: veth
# picks the queue by the sending CPU, so the sender is pinned to one. (Not
# pinned, native mode splits flows over both queues and per-queue metering
# exports each flow in pieces: exactly why asymmetric RSS is re-sharded.)
LIVE_SEND_PREFIX="taskset -c 0" run_case per-queue 2 "2 queues run to completion on 2 threads" --threads 2 \
  --assume-symmetric-rss
grep -q "$LIVE_HOST: --rss-symmetric: the RSS key cannot be set either" "$LIVE_TMP/rss-flag.err" ||
  fail "--rss-symmetric on veth: not said"
echo "PASS: --rss-symmetric says it cannot set the key on veth"

# Only queue 1: one socket; the plan's frames land on whichever queue the
# sender's TX queue maps to, so only the socket count is asserted.
live_start_sensor one-queue --capture xdp --xdp-mode "$XDP_MODE" --queues 1 --json --stats-json "$LIVE_TMP/one-queue.stats"
grep -q "capturing on $LIVE_HOST with xdp ($XDP_MODE), queue 1:copy; times: " "$LIVE_TMP/one-queue.err" || fail "one-queue: report"
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 - "$LIVE_TMP/one-queue.stats" <<'PY' || fail "one-queue: stats"
import json, sys
s = json.load(open(sys.argv[1]))
live = s["live"]
assert [q["queue"] for q in live["queues"]] == [1], live["queues"]
p = live["program"]
assert p["seen"] == 30 and p["redirected"] + p["no_socket"] == 30, p
assert s["received"] == live["queues"][0]["rx_packets"] == p["redirected"], s
PY
echo "PASS: --queues 1 binds queue 1 only"

# Records leave as they expire on the multi-core paths too (idle shards
# sweep by wall clock about once a second, each batch flushed to stdout).
for mode in reshard per-queue; do
  extra=()
  [[ $mode == per-queue ]] && extra=(--assume-symmetric-rss)
  live_start_sensor "expiry-$mode" --capture xdp --xdp-mode "$XDP_MODE" --threads 2 \
    --json --idle-timeout 1 --tcp-linger 1 "${extra[@]}"
  LIVE_SEND_PREFIX="taskset -c 0" live_send_plan
  sleep 3.5
  n=$(grep -c '"end_reason":"idle"' "$LIVE_TMP/expiry-$mode.out" || true)
  live_stop_sensor
  [[ $n -eq 4 ]] || fail "expiry-$mode: $n idle records before SIGINT, want 4"
  echo "PASS: expiry-$mode: records are written as they expire"
done
