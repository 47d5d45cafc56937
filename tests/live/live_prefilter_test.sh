#!/usr/bin/env bash
# XDP pre-filters: --xdp-proto and --xdp-ip-version are compiled into the XDP
# program, so unwanted frames never reach user space: they are XDP_PASSed to
# the kernel stack and counted as prefiltered. Each case sends the known plan
# (tools/flower_send.cc: UDP4 x2, TCP4, UDP6) and checks that exactly the
# matching flows are metered and every other frame is counted as prefiltered.
#
#   live_prefilter_test.sh SENSOR SENDER XDP_MODE      XDP_MODE: generic | native
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2 XDP_MODE=${3:-generic}
source "$here/netns_lib.sh"
live_begin

# case NAME "SENSOR ARGS" "CHECK ARGS"
run_case() {
  local name=$1 sensor_args=$2 check_args=$3
  # shellcheck disable=SC2086
  live_start_sensor "$name" --capture xdp --xdp-mode "$XDP_MODE" $sensor_args --json \
    --stats-json "$LIVE_TMP/$name.stats"
  grep -q "XDP pre-filter:" "$LIVE_TMP/$name.err" || { echo "FAIL: $name: pre-filter not reported"; cat "$LIVE_TMP/$name.err"; exit 1; }
  live_send_plan
  sleep 0.5
  live_stop_sensor
  # shellcheck disable=SC2086
  /usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/$name.out" "$LIVE_TMP/$name.stats" \
    --front-end xdp --xdp-mode "$XDP_MODE" $check_args || { cat "$LIVE_TMP/$name.err"; exit 1; }
  echo "PASS: $name"
}

run_case udp-only "--xdp-proto udp" "--protos 17"          # 21 frames metered, the 9 TCP prefiltered
run_case ipv6-only "--xdp-ip-version 6" "--ip-version 6"    # 6 frames metered, 24 prefiltered
run_case tcp-v4 "--xdp-proto tcp,58 --xdp-ip-version 4" "--protos 6,58 --ip-version 4"  # 9 metered

# A bad list is a usage error (exit 2), before anything is attached.
rc=0; "$FLOWER_SENSOR" -d "$LIVE_HOST" --xdp-proto udp,bogus >/dev/null 2>"$LIVE_TMP/bad.err" || rc=$?
[[ $rc -eq 2 ]] || { echo "FAIL: --xdp-proto bogus exited $rc, want 2"; cat "$LIVE_TMP/bad.err"; exit 1; }
grep -q "unknown IP protocol 'bogus'" "$LIVE_TMP/bad.err" || { echo "FAIL: no reason for bad --xdp-proto"; cat "$LIVE_TMP/bad.err"; exit 1; }
echo "PASS: bad --xdp-proto rejected"
