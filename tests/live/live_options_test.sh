#!/usr/bin/env bash
# Live option handling on a veth pair (one queue, no zero-copy, no RSS):
# bad --queues, --zero-copy on/auto, --capture xdp failing vs the default
# falling back, and the per-queue report at start and in --stats-json.
#
#   live_options_test.sh SENSOR SENDER
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2
source "$here/netns_lib.sh"
live_begin

fail() { echo "FAIL: $*"; for f in "$LIVE_TMP"/*.err; do [[ -e $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
nothing_attached() {
  if ip -d link show "$LIVE_HOST" | grep -q "prog/xdp"; then fail "$1: XDP program left attached"; fi
  [[ ! -e /sys/fs/bpf/flower/$LIVE_HOST ]] || fail "$1: pins left behind"
}
# expect_error NAME RC PATTERN ARGS...: the sensor exits RC with exactly one
# stderr line matching PATTERN.
expect_error() {
  local name=$1 want=$2 pattern=$3 rc=0; shift 3
  "$FLOWER_SENSOR" -d "${DEV:-$LIVE_HOST}" "$@" >"$LIVE_TMP/$name.out" 2>"$LIVE_TMP/$name.err" || rc=$?
  [[ $rc -eq $want ]] || fail "$name: exit $rc, want $want"
  [[ $(wc -l <"$LIVE_TMP/$name.err") -eq 1 ]] || fail "$name: not one line"
  grep -q -- "$pattern" "$LIVE_TMP/$name.err" || fail "$name: no '$pattern'"
  [[ ! -s "$LIVE_TMP/$name.out" ]] || fail "$name: wrote records"
  nothing_attached "$name"
  echo "PASS: $name: $(cat "$LIVE_TMP/$name.err")"
}

expect_error queue-missing 1 "$LIVE_HOST has no RX queue 5 (it has 1: queue 0)" --queues 5
expect_error queue-missing-pcap 1 "has no RX queue 3" --capture pcap --queues 0,3
expect_error queue-twice 1 "queue 0 given twice" --queues 0,0
expect_error queue-bad 2 "Could not convert" --queues zero
expect_error zc-on-native 1 "^flower-sensor: XDP capture on $LIVE_HOST: --zero-copy on: .*cannot bind in zero-copy mode: Operation not supported (the driver has no AF_XDP zero-copy" \
  --capture xdp --xdp-mode native --zero-copy on
expect_error zc-on-generic 1 "cannot bind in zero-copy mode: .*(generic XDP never has zero-copy)" \
  --capture xdp --xdp-mode generic --zero-copy on
DEV=nosuchdev0 expect_error xdp-no-device 1 "^flower-sensor: XDP capture on nosuchdev0: no such device" --capture xdp

# --zero-copy auto: copy mode, said per queue at start and in the stats.
live_start_sensor zc-auto --capture xdp --xdp-mode native --zero-copy auto --json --stats-json "$LIVE_TMP/zc-auto.stats"
grep -q "queue 0: zero-copy unavailable (Operation not supported), using copy mode" "$LIVE_TMP/zc-auto.err" ||
  fail "zc-auto: fallback to copy not reported"
grep -q "capturing on $LIVE_HOST with xdp (native), queue 0:copy" "$LIVE_TMP/zc-auto.err" || fail "zc-auto: no per-queue report"
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/zc-auto.out" "$LIVE_TMP/zc-auto.stats" --front-end xdp --xdp-mode native \
  --threads 1 || fail "zc-auto: records/counters"
/usr/bin/python3 - "$LIVE_TMP/zc-auto.stats" <<'EOF' || fail "zc-auto: stats"
import json, sys
live = json.load(open(sys.argv[1]))["live"]
q = live["queues"][0]
assert (q["queue"], q["xdp_mode"], q["bind"], q["zero_copy"]) == (0, "native", "copy", False), q
for k in ("rx_dropped", "rx_invalid_descs", "rx_ring_full", "fill_ring_empty_descs"):
    assert q[k] == 0, (k, q)
assert live["rss"] == {"checked": False, "symmetric": False, "note": "single RX queue: RSS not involved"}, live["rss"]
EOF
grep -q "queue 0 native copy: rx 30, rx_dropped 0, rx_ring_full 0, fill_ring_empty 0" "$LIVE_TMP/zc-auto.err" ||
  fail "zc-auto: summary lacks the queue line"
nothing_attached zc-auto
echo "PASS: --zero-copy auto falls back to copy and reports it per queue"

# --zero-copy on without --capture: one line, then libpcap meters the plan
# (on a quiet port, where the default is XDP).
live_host_unaddressed
live_start_sensor zc-fallback --zero-copy on --json --stats-json "$LIVE_TMP/zc-fallback.stats"
[[ $(grep -c "falling back to libpcap" "$LIVE_TMP/zc-fallback.err") -eq 1 ]] || fail "zc-fallback: no single fallback line"
grep -q "XDP unavailable on $LIVE_HOST (--zero-copy on: .*); falling back to libpcap" "$LIVE_TMP/zc-fallback.err" ||
  fail "zc-fallback: reason missing"
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/zc-fallback.out" "$LIVE_TMP/zc-fallback.stats" --front-end pcap ||
  fail "zc-fallback: records/counters"
grep -q '"fallback_reason":"--zero-copy on: ' "$LIVE_TMP/zc-fallback.stats" || fail "zc-fallback: reason not in stats"
nothing_attached zc-fallback
echo "PASS: without --capture, a failing XDP setup falls back to libpcap in one line"

# --queues with libpcap: said once, capture still exact.
live_start_sensor pcap-queues --capture pcap --queues 0 --json --stats-json "$LIVE_TMP/pcap-queues.stats"
grep -q "\-\-queues applies to XDP only" "$LIVE_TMP/pcap-queues.err" || fail "pcap-queues: not said"
live_send_plan
sleep 0.5
live_stop_sensor
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/pcap-queues.out" "$LIVE_TMP/pcap-queues.stats" --front-end pcap ||
  fail "pcap-queues: records/counters"
echo "PASS: --queues with libpcap"

# --rss-symmetric on a single-queue device: nothing to set, said so.
live_start_sensor rss --capture xdp --xdp-mode generic --rss-symmetric --json
grep -q "$LIVE_HOST: --rss-symmetric: nothing to set" "$LIVE_TMP/rss.err" || fail "rss: not said"
live_stop_sensor
echo "PASS: --rss-symmetric on one queue"
