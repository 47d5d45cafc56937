#!/usr/bin/env bash
# A stop under full load still balances the ledger: frames left in the
# front end's rings at SIGINT are drained and metered, or counted as
# source_undrained.
#
#   live_drain_test.sh SENSOR SENDER MODE
#     MODE: xdp-generic | xdp-native | xdp-reshard | xdp-per-queue | pcap
#
# 1. Rings full at the stop, exactly: the sensor is frozen (SIGSTOP) while a
#    blast fills its rings (and overflows them, for XDP), SIGINT arrives
#    during the blast, and the sensor resumes (SIGCONT) once the blast is
#    over. Everything the host veth received (rx_packets delta: the frames
#    it handed to XDP or to the packet socket) must equal
#    received + source_dropped + source_undrained, and the frames waiting in
#    the rings must have been metered (received > 0: without the drain the
#    stop flag ends the loop before any read).
# 2. SIGINT while a blast is running: XDP stops its intake first, so the
#    program's `redirected` equals received + source_dropped +
#    source_undrained exactly; every front end still reconciles.
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2 MODE=$3
source "$here/netns_lib.sh"

# The multi-core paths drain too: two queues re-sharded by parallel_engine::run
# (one reader, 2 shards), or each run to completion (run_per_queue).
case $MODE in
  xdp-generic)   args=(--capture xdp --xdp-mode generic) ;;
  xdp-native)    args=(--capture xdp --xdp-mode native) ;;
  xdp-reshard)   LIVE_QUEUES=2; args=(--capture xdp --xdp-mode native --threads 2) ;;
  xdp-per-queue) LIVE_QUEUES=2; args=(--capture xdp --xdp-mode native --threads 2 --assume-symmetric-rss) ;;
  pcap)          args=(--capture pcap) ;;
  *) echo "unknown mode $MODE"; exit 2 ;;
esac
live_begin
# veth takes XDP-sent or GRO'd frames only into a NAPI ring; the AF_PACKET
# sender needs neither, but keep the path the bench measures.
ethtool -K "$LIVE_HOST" gro on >/dev/null 2>&1 || true

fail() { echo "FAIL: $*"; for f in "$LIVE_TMP"/*.err; do [[ -e $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }

blast() {  # blast SECONDS PPS: UDP over 64 flows from the namespace
  ip netns exec "$LIVE_NS" "$FLOWER_SEND" --iface "$LIVE_PEER" --blast --flows 64 --size 64 --seconds "$1" --pps "$2"
}

# balance STATS DELIVERED WHAT: DELIVERED == received + source_dropped + source_undrained
balance() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY' || fail "$3"
import json, sys
s = json.load(open(sys.argv[1]))
delivered = int(sys.argv[2])
parts = (s["received"], s["source_dropped"], s["source_undrained"])
print(f"{sys.argv[3]}: delivered {delivered} = received {parts[0]} + source_dropped {parts[1]} "
      f"+ source_undrained {parts[2]} ({sum(parts)})")
assert s["conserved"] is True, "ledger not conserved"
sys.exit(0 if sum(parts) == delivered else 1)
PY
}

# --- 1: rings full at the stop ------------------------------------------
live_start_sensor frozen "${args[@]}" --json --quiet --stats-json "$LIVE_TMP/frozen.stats"
rx0=$(live_rx_packets)
kill -STOP "$LIVE_SENSOR_PID"
blast 1 30000 >"$LIVE_TMP/blast1.txt" &
blast_pid=$!
sleep 0.5
kill -INT "$LIVE_SENSOR_PID"   # pending until SIGCONT: the stop comes with full rings
wait "$blast_pid"
rx1=$(live_rx_packets)
kill -CONT "$LIVE_SENSOR_PID"
live_stop_sensor || fail "frozen sensor exited non-zero"
cat "$LIVE_TMP/blast1.txt"
balance "$LIVE_TMP/frozen.stats" $((rx1 - rx0)) "rings full at SIGINT"
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["received"] > 0 else 1)' "$LIVE_TMP/frozen.stats" || fail "nothing drained from the full rings"
echo "PASS: $MODE: a stop with full rings meters what they hold and balances against the veth"

# --- 2: SIGINT during a running blast -----------------------------------
live_start_sensor running "${args[@]}" --json --quiet --stats-json "$LIVE_TMP/running.stats"
blast 3 200000 >"$LIVE_TMP/blast2.txt" &
blast_pid=$!
sleep 1.5
live_stop_sensor || fail "running sensor exited non-zero"
wait "$blast_pid"
cat "$LIVE_TMP/blast2.txt"
if [[ $MODE == xdp-* ]]; then
  redirected=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["live"]["program"]["redirected"])' \
               "$LIVE_TMP/running.stats")
  balance "$LIVE_TMP/running.stats" "$redirected" "SIGINT during a blast (against the program's redirected)"
else
  /usr/bin/python3 - "$LIVE_TMP/running.stats" <<'PY' || fail "ledger after SIGINT during a blast"
import json, sys
s = json.load(open(sys.argv[1]))
print(f"SIGINT during a blast: received {s['received']}, source_dropped {s['source_dropped']}, "
      f"source_undrained {s['source_undrained']}, conserved {s['conserved']}")
sys.exit(0 if s["conserved"] is True and s["received"] > 0 else 1)
PY
fi
echo "PASS: $MODE: SIGINT during a blast"
