#!/usr/bin/env bash
# A sensor killed with SIGKILL leaves flower_xdp attached and pinned; the next
# sensor on the same interface must recognise it as ours, replace it and
# capture normally. A foreign XDP program must make it refuse.
#
#   live_restart_test.sh SENSOR SENDER
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2
source "$here/netns_lib.sh"
live_begin

live_start_sensor first --capture xdp --xdp-mode generic --json
kill -KILL "$LIVE_SENSOR_PID"; wait "$LIVE_SENSOR_PID" 2>/dev/null || true; LIVE_SENSOR_PID=
ip -d link show "$LIVE_HOST" | grep -q "prog/xdp" || { echo "FAIL: expected a stale program after SIGKILL"; exit 1; }
[[ -e /sys/fs/bpf/flower/$LIVE_HOST/prog ]] || { echo "FAIL: expected stale pins after SIGKILL"; exit 1; }

live_start_sensor second --capture xdp --xdp-mode generic --json --stats-json "$LIVE_TMP/second.stats"
grep -q "replaced a stale flower_xdp" "$LIVE_TMP/second.err" || { echo "FAIL: stale program not reported"; cat "$LIVE_TMP/second.err"; exit 1; }
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/second.out" "$LIVE_TMP/second.stats" --front-end xdp --xdp-mode generic
grep -q '"replaced_stale_program":true' "$LIVE_TMP/second.stats" || { echo "FAIL: replaced_stale_program not counted"; exit 1; }

# A program that is not ours: the sensor must refuse with --capture xdp
# and leave it in place.
LIVE_FOREIGN_OBJ=$LIVE_TMP/foreign_pass.bpf.o
clang -O2 -target bpf -idirafter "/usr/include/$(uname -m)-linux-gnu" -c "$here/foreign_pass.bpf.c" -o "$LIVE_FOREIGN_OBJ"
ip link set dev "$LIVE_HOST" xdpgeneric obj "$LIVE_FOREIGN_OBJ" sec xdp
rc=0
"$FLOWER_SENSOR" -d "$LIVE_HOST" --capture xdp --xdp-mode generic --json >/dev/null 2>"$LIVE_TMP/foreign.err" || rc=$?
cat "$LIVE_TMP/foreign.err"
[[ $rc -ne 0 ]] || { echo "FAIL: sensor accepted a foreign XDP program"; exit 1; }
grep -q "not flower's, refusing" "$LIVE_TMP/foreign.err" || { echo "FAIL: no refusal message"; exit 1; }
ip -d link show "$LIVE_HOST" | grep -q "prog/xdp" || { echo "FAIL: foreign program was removed"; exit 1; }
echo "PASS: restart after SIGKILL replaces our stale program, refuses a foreign one"

# Without an explicit --capture the sensor says why in one line and falls
# back to libpcap, still metering everything. (On a quiet port: with an
# address the default is libpcap anyway.)
live_host_unaddressed
live_start_sensor fallback --json --stats-json "$LIVE_TMP/fallback.stats"
live_send_plan
sleep 0.5
live_stop_sensor
grep -q "XDP unavailable on $LIVE_HOST (.*not flower's.*); falling back to libpcap" "$LIVE_TMP/fallback.err" ||
  { echo "FAIL: no fallback line"; cat "$LIVE_TMP/fallback.err"; exit 1; }
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/fallback.out" "$LIVE_TMP/fallback.stats" --front-end pcap
echo "PASS: falls back to libpcap when XDP cannot attach"

# Records are written as they expire, before the sensor stops: with a 1 s
# idle timeout all four flows are on stdout 2.5 s after the last frame.
ip link set dev "$LIVE_HOST" xdpgeneric off
live_start_sensor expiry --capture xdp --xdp-mode generic --json --idle-timeout 1 --tcp-linger 1
live_send_plan
sleep 2.5
n=$(grep -c '"end_reason":"idle"' "$LIVE_TMP/expiry.out" || true)
live_stop_sensor
[[ $n -eq 4 ]] || { echo "FAIL: $n idle records before SIGINT, want 4"; cat "$LIVE_TMP/expiry.out"; exit 1; }
echo "PASS: records are written as they expire"
