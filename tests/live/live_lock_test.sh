#!/usr/bin/env bash
# One sensor per interface: a running sensor holds /run/flower/DEV.lock; a
# second one (any front end) is refused in one line naming the holder's pid
# and touches nothing: the first keeps its XDP program and meters exactly.
# A sensor killed with SIGKILL frees the lock, and the next one replaces
# its stale program.
#
#   live_lock_test.sh SENSOR SENDER
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2
source "$here/netns_lib.sh"
live_begin

fail() { echo "FAIL: $*"; for f in "$LIVE_TMP"/*.err; do [[ -e $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
prog_id() { ip -d link show "$LIVE_HOST" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -1; }

live_start_sensor first --capture xdp --xdp-mode generic --json --stats-json "$LIVE_TMP/first.stats"
first_pid=$LIVE_SENSOR_PID
id=$(prog_id)
[[ -n $id ]] || fail "first sensor attached no program"
[[ $(cat "/run/flower/$LIVE_HOST.lock") == "$first_pid" ]] || fail "lock file does not hold pid $first_pid"

for args in "--capture xdp --xdp-mode generic" "--capture pcap" ""; do
  rc=0
  # shellcheck disable=SC2086
  "$FLOWER_SENSOR" -d "$LIVE_HOST" $args --json >"$LIVE_TMP/second.out" 2>"$LIVE_TMP/second.err" || rc=$?
  [[ $rc -eq 1 ]] || fail "second sensor ($args) exited $rc, want 1"
  [[ $(wc -l <"$LIVE_TMP/second.err") -eq 1 ]] || fail "second sensor ($args): refusal is not one line"
  grep -q "$LIVE_HOST is in use: flower-sensor pid $first_pid is capturing on it (lock /run/flower/$LIVE_HOST.lock)" \
    "$LIVE_TMP/second.err" || fail "second sensor ($args): no refusal naming pid $first_pid"
  [[ ! -s "$LIVE_TMP/second.out" ]] || fail "second sensor ($args) wrote records"
  [[ $(prog_id) == "$id" ]] || fail "second sensor ($args) replaced the running sensor's program ($id -> $(prog_id))"
  echo "PASS: second sensor ($args) refused: $(cat "$LIVE_TMP/second.err")"
done

# The first one still captures, its ledger intact.
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/first.out" "$LIVE_TMP/first.stats" --front-end xdp --xdp-mode generic ||
  fail "first sensor's records/ledger after the refusals"
[[ ! -e /run/flower/$LIVE_HOST.lock ]] || fail "lock file left after a clean stop"
echo "PASS: the running sensor kept its program and metered the plan exactly"

# SIGKILL: the lock dies with the sensor, its program stays; the next one
# replaces it as stale and meters exactly.
live_start_sensor killed --capture xdp --xdp-mode generic --json
killed_pid=$LIVE_SENSOR_PID
kill -KILL "$LIVE_SENSOR_PID"; wait "$LIVE_SENSOR_PID" 2>/dev/null || true; LIVE_SENSOR_PID=
[[ -n $(prog_id) ]] || fail "expected the killed sensor's program to stay attached"
live_start_sensor third --capture xdp --xdp-mode generic --json --stats-json "$LIVE_TMP/third.stats"
grep -q "replaced a stale flower_xdp left on $LIVE_HOST" "$LIVE_TMP/third.err" || fail "stale program not replaced"
[[ $(cat "/run/flower/$LIVE_HOST.lock") == "$LIVE_SENSOR_PID" ]] || fail "lock not taken over from dead pid $killed_pid"
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/third.out" "$LIVE_TMP/third.stats" --front-end xdp --xdp-mode generic ||
  fail "third sensor's records/ledger"
echo "PASS: a dead sensor's lock is free and its program replaced"
