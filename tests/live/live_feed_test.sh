#!/usr/bin/env bash
# The ZeroMQ feed from a live capture (docs/feed.md): flower-sub subscribes
# first, flower-sensor -d meters flower-send's "basic" plan with
# --publish ipc://... --wait-subscribers 1 for about three seconds, then
# SIGINT. The subscriber must have received exactly the sensor's own --json
# records, interim "stats" messages while it ran (once a second), and a
# final one whose ledger is the --stats-json ledger.
#
#   live_feed_test.sh SENSOR SENDER SUB MODE
#     MODE: xdp-generic | pcap
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2 FLOWER_SUB=$3 MODE=$4
source "$here/netns_lib.sh"

SUB_PID=
stop_sub() {
  if [[ -n "$SUB_PID" ]] && kill -0 "$SUB_PID" 2>/dev/null; then kill -KILL "$SUB_PID"; wait "$SUB_PID" 2>/dev/null; fi
  live_teardown
}
live_begin
trap stop_sub EXIT

case $MODE in
  xdp-generic) args=(--capture xdp --xdp-mode generic); check=(--front-end xdp --xdp-mode generic) ;;
  pcap)        args=(--capture pcap);                   check=(--front-end pcap) ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac

# JSON encoding: its stats ledger is exactly the --stats-json object.
endpoint="ipc://$LIVE_TMP/feed"
"$FLOWER_SUB" --connect "$endpoint" --json --stats >"$LIVE_TMP/sub.out" 2>"$LIVE_TMP/sub.err" &
SUB_PID=$!
live_start_sensor run "${args[@]}" --json --stats-json "$LIVE_TMP/run.stats" \
  --publish "$endpoint" --feed-format json --sensor-id live --wait-subscribers 1 --wait-timeout 10
grep -q "subscribers after" "$LIVE_TMP/run.err" && { echo "FAIL: the subscriber was not seen"; cat "$LIVE_TMP/run.err"; exit 1; }
live_send_plan
sleep 3  # > 2 s: at least two interim stats messages
live_stop_sensor
sleep 0.5  # the sensor has closed (linger done): what it sent is in the subscriber's pipe
kill -INT "$SUB_PID"
wait "$SUB_PID" || { echo "FAIL: flower-sub exited with $?"; cat "$LIVE_TMP/sub.err"; exit 1; }
SUB_PID=
cat "$LIVE_TMP/run.err" "$LIVE_TMP/sub.err"
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/run.out" "$LIVE_TMP/run.stats" "${check[@]}"

/usr/bin/python3 - "$LIVE_TMP/run.out" "$LIVE_TMP/run.stats" "$LIVE_TMP/sub.out" "$LIVE_TMP/sub.err" <<'EOF'
import json, sys
run_out, run_stats, sub_out, sub_err = sys.argv[1:5]
failures = []
want = sorted(l for l in open(run_out).read().splitlines() if l)
records, stats = [], []
for line in open(sub_out).read().splitlines():
    if line.startswith('{"envelope"'):
        stats.append(json.loads(line))
    else:
        records.append(line)
if sorted(records) != want:
    failures.append("subscriber records != sensor --json records:\n  sub: %s\n  sensor: %s" % (sorted(records), want))
if "lost 0 messages (0 records) in 0 gaps" not in open(sub_err).read():
    failures.append("the subscriber saw gaps")
# --stats-json is the ledger plus the run's facts (threads, hash_seed, live, ...).
file_ledger = json.load(open(run_stats))
if len(stats) < 3:
    failures.append("want >= 2 interim stats messages and the final one, got %d" % len(stats))
else:
    seqs = [s["envelope"]["seq"] for s in stats]
    if seqs != list(range(1, len(stats) + 1)):
        failures.append("stats seq not 1..n: %s" % seqs)
    final = stats[-1]["stats"]["ledger"]
    if "received" not in final or any(final[k] != file_ledger.get(k) for k in final):
        failures.append("final stats ledger != --stats-json:\n  feed: %s\n  file: %s"
                        % (json.dumps(final), json.dumps(file_ledger)))
    received = [s["stats"]["ledger"]["received"] for s in stats]
    if received != sorted(received):
        failures.append("received goes backwards across stats messages: %s" % received)
    for s in stats[:-1]:
        l = s["stats"]["ledger"]
        if not l["conserved"]:
            failures.append("interim ledger does not balance: %s" % json.dumps(l))
        env = s["envelope"]
        if env["interval_end_ns"] <= env["interval_start_ns"]:
            failures.append("interim interval empty: %s" % env)
    if not any(s["stats"]["ledger"]["received"] > 0 for s in stats[:-1]):
        failures.append("no interim stats message counted the plan's packets")
for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("feed: %d records, %d stats messages (%d interim)" % (len(records), len(stats), len(stats) - 1))
EOF
echo "PASS: live feed $MODE"
