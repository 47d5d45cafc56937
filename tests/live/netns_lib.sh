# netns_lib.sh: disposable network namespace + veth pair with quiet links,
# for the live capture tests and bench/live-bench. Source it, then:
#   live_begin          # a test: skip unless root with netns, trap live_teardown
#                       # EXIT, set -e, then live_setup; or by hand:
#   live_setup          # creates $LIVE_NS with $LIVE_PEER inside, $LIVE_HOST outside
#   trap live_teardown EXIT
# LIVE_QUEUES=N (before live_begin / live_setup): N RX/TX queues on both ends (default 1).
# Addresses are the pair's own: 10.77.0.1 (host side) / 10.77.0.2 (namespace).
# The host side therefore carries host traffic, so a sensor without --capture
# takes libpcap there (docs/live-capture.md); live_host_unaddressed makes it a
# quiet capture port on which the default is XDP.
# No IPv6 on either side (no DAD, no router solicitations), static neighbours,
# so the only frames on the link are the ones the test sends.

LIVE_SKIP=77

live_require_root() {
  if [[ $EUID -ne 0 ]]; then echo "SKIP: live capture tests need root"; exit $LIVE_SKIP; fi
  if ! command -v ip >/dev/null || ! ip netns add "flower-probe-$$" 2>/dev/null; then
    echo "SKIP: no network namespace support"; exit $LIVE_SKIP
  fi
  ip netns del "flower-probe-$$"
}

# The usual start of a test: skip without root or netns support, tear down
# on any exit, stop at the first failing command, set up the pair.
live_begin() {
  live_require_root
  trap live_teardown EXIT
  set -e
  live_setup
}

live_setup() {
  LIVE_NS="flower-live-$$"
  LIVE_HOST="flvh$$"
  LIVE_PEER="flvn$$"
  LIVE_TMP=$(mktemp -d /tmp/flower-live.XXXXXX)
  ip netns add "$LIVE_NS"
  local q=${LIVE_QUEUES:-1}
  ip link add "$LIVE_HOST" numtxqueues "$q" numrxqueues "$q" type veth \
    peer name "$LIVE_PEER" netns "$LIVE_NS" numtxqueues "$q" numrxqueues "$q"
  sysctl -qw "net.ipv6.conf.$LIVE_HOST.disable_ipv6=1"
  ip netns exec "$LIVE_NS" sysctl -qw "net.ipv6.conf.$LIVE_PEER.disable_ipv6=1" "net.ipv6.conf.lo.disable_ipv6=1"
  ip addr add 10.77.0.1/24 dev "$LIVE_HOST"
  ip -n "$LIVE_NS" addr add 10.77.0.2/24 dev "$LIVE_PEER"
  local host_mac peer_mac
  host_mac=$(cat "/sys/class/net/$LIVE_HOST/address")
  peer_mac=$(ip netns exec "$LIVE_NS" cat "/sys/class/net/$LIVE_PEER/address")
  ip neigh replace 10.77.0.2 lladdr "$peer_mac" dev "$LIVE_HOST" nud permanent
  ip -n "$LIVE_NS" neigh replace 10.77.0.1 lladdr "$host_mac" dev "$LIVE_PEER" nud permanent
  ip -n "$LIVE_NS" link set lo up
  ip -n "$LIVE_NS" link set "$LIVE_PEER" up
  ip link set "$LIVE_HOST" up
}

# live_host_unaddressed: remove the host side's address (and with it its
# route): the interface no longer carries this host's traffic.
live_host_unaddressed() {
  ip addr flush dev "$LIVE_HOST"
}

# live_rx_packets: frames the host side of the veth received (what it
# delivered to XDP or the stack), as `ip -s link` shows.
live_rx_packets() {
  cat "/sys/class/net/$LIVE_HOST/statistics/rx_packets"
}

live_teardown() {
  local rc=$?
  set +e  # runs from an EXIT trap, maybe under set -e: every step must run
  if [[ -n "${LIVE_SENSOR_PID:-}" ]] && kill -0 "$LIVE_SENSOR_PID" 2>/dev/null; then
    kill -KILL "$LIVE_SENSOR_PID" 2>/dev/null; wait "$LIVE_SENSOR_PID" 2>/dev/null
  fi
  # A killed sensor may leave its program attached: deleting the link removes it.
  [[ -n "${LIVE_HOST:-}" ]] && ip link del "$LIVE_HOST" 2>/dev/null
  [[ -n "${LIVE_NS:-}" ]] && ip netns del "$LIVE_NS" 2>/dev/null
  [[ -n "${LIVE_HOST:-}" ]] && rm -rf "/sys/fs/bpf/flower/$LIVE_HOST"
  # A killed sensor's lock file stays (its lock died with it): tidy up.
  [[ -n "${LIVE_HOST:-}" ]] && rm -f "/run/flower/$LIVE_HOST.lock"
  [[ -n "${LIVE_TMP:-}" && -z "${LIVE_KEEP:-}" ]] && rm -rf "$LIVE_TMP"
  return $rc
}

# live_start_sensor NAME ARGS...: runs the sensor on $LIVE_HOST in the background,
# stdout -> $LIVE_TMP/NAME.out, stderr -> NAME.err; waits until it captures.
live_start_sensor() {
  local name=$1; shift
  rm -f "$LIVE_TMP/$name.err"  # a previous run's "capturing on" must not count as this one's start
  ${LIVE_SENSOR_PREFIX:-} "$FLOWER_SENSOR" -d "$LIVE_HOST" "$@" >"$LIVE_TMP/$name.out" 2>"$LIVE_TMP/$name.err" &
  LIVE_SENSOR_PID=$!
  local i
  for i in $(seq 100); do
    grep -q "capturing on" "$LIVE_TMP/$name.err" 2>/dev/null && return 0
    kill -0 "$LIVE_SENSOR_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: sensor did not start:"; cat "$LIVE_TMP/$name.err"
  return 1
}

# live_stop_sensor: SIGINT, wait, return the sensor's exit code.
live_stop_sensor() {
  kill -INT "$LIVE_SENSOR_PID"
  local rc=0
  wait "$LIVE_SENSOR_PID" || rc=$?
  LIVE_SENSOR_PID=
  return $rc
}

# LIVE_SEND_PREFIX (e.g. "taskset -c 0") runs the sender under a wrapper.
live_send_plan() {
  ip netns exec "$LIVE_NS" ${LIVE_SEND_PREFIX:-} "$FLOWER_SEND" --iface "$LIVE_PEER" --plan basic >/dev/null
}
