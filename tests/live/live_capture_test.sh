#!/usr/bin/env bash
# Live capture, end to end: a known set of frames is sent from a network
# namespace into a veth pair and flower-sensor -d meters it; the records
# (packets/bytes per direction) and counters must match exactly.
#
#   live_capture_test.sh SENSOR SENDER MODE
#     MODE: xdp-generic | xdp-native | xdp-native-clock | pcap | auto
# Native mode attaches flower_xdp_hwts (device-bound, XDP metadata receive
# times); --timestamps clock and generic mode attach plain flower_xdp.
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2 MODE=$3
source "$here/netns_lib.sh"
live_begin

case $MODE in
  xdp-generic) args=(--capture xdp --xdp-mode generic)
               check=(--front-end xdp --xdp-mode generic --timestamps batch-clock) ;;
  xdp-native)  args=(--capture xdp --xdp-mode native)
               check=(--front-end xdp --xdp-mode native --timestamps xdp-metadata) ;;
  xdp-native-clock) args=(--capture xdp --xdp-mode native --timestamps clock)
               check=(--front-end xdp --xdp-mode native --timestamps batch-clock) ;;
  pcap)        args=(--capture pcap);                   check=(--front-end pcap) ;;
  auto)        args=();                                 check=(--front-end xdp) ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac

live_start_sensor run "${args[@]}" --json --stats-json "$LIVE_TMP/run.stats"
live_send_plan
sleep 0.5
live_stop_sensor
cat "$LIVE_TMP/run.err"
/usr/bin/python3 "$here/check_live.py" "$LIVE_TMP/run.out" "$LIVE_TMP/run.stats" "${check[@]}"

# After a clean exit nothing of ours is left: no XDP program, no pins.
if ip -d link show "$LIVE_HOST" | grep -q "prog/xdp"; then echo "FAIL: XDP program left attached"; exit 1; fi
if [[ -e /sys/fs/bpf/flower/$LIVE_HOST ]]; then echo "FAIL: pins left in /sys/fs/bpf/flower/$LIVE_HOST"; exit 1; fi
echo "PASS: live capture $MODE"
