#!/usr/bin/env bash
# -b: the sensor runs as a daemon. The parent returns 0 once capture runs
# (after relaying the start-up lines), the daemon has no terminal, writes its
# pidfile and its log, keeps the redirected stdout for the records, and at
# SIGTERM exports every flow, writes --stats-json and removes the pidfile.
# A second daemon on the same pidfile is refused; a daemon that cannot start
# makes the parent exit non-zero with the reason; without --log the lines go
# to syslog (checked with our own /dev/log listener when none exists).
#
#   live_daemon_test.sh SENSOR SENDER
# Exit 77 (skip) without root or netns support.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLOWER_SENSOR=$1 FLOWER_SEND=$2
source "$here/netns_lib.sh"
live_require_root

SYSLOG_PID=
cleanup() {
  local rc=$?
  set +e  # the EXIT trap may run under set -e: every step must run
  # A daemon still running (the test failed): stop it by its pidfile.
  for f in "${LIVE_TMP:-/nonexistent}"/*.pid; do
    [[ -s $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  if [[ -n $SYSLOG_PID ]]; then kill "$SYSLOG_PID" 2>/dev/null; wait "$SYSLOG_PID" 2>/dev/null || true; rm -f /dev/log; fi
  (exit $rc)
  live_teardown
}
trap cleanup EXIT
set -e
live_setup
cd "$LIVE_TMP"

fail() { echo "FAIL: $*"; for f in "$LIVE_TMP"/*.log "$LIVE_TMP"/*.err; do [[ -e $f ]] && { echo "--- $f"; cat "$f"; }; done; exit 1; }

# wait_gone PID: up to 10 s for the process to exit.
wait_gone() {
  local i
  for i in $(seq 100); do [[ -e /proc/$1 ]] || return 0; sleep 0.1; done
  return 1
}

# --- start, check the daemon's shape ---
rc=0
"$FLOWER_SENSOR" -b -d "$LIVE_HOST" --capture xdp --xdp-mode generic --pidfile d.pid --log d.log \
  --json --stats-json d.stats >d.out 2>parent.err || rc=$?
[[ $rc -eq 0 ]] || fail "parent exited $rc"
grep -q "capturing on $LIVE_HOST with xdp (generic)" parent.err || fail "parent did not relay the start-up report"
[[ -s d.pid ]] || fail "no pidfile"
pid=$(cat d.pid)
[[ -e /proc/$pid ]] || fail "daemon $pid not running"
read -r -a st </proc/"$pid"/stat
[[ ${st[5]} -eq $pid ]] || fail "daemon is not a session leader (sid ${st[5]})"
[[ ${st[6]} -eq 0 ]] || fail "daemon has a controlling terminal (tty_nr ${st[6]})"
[[ $(readlink /proc/"$pid"/fd/0) == /dev/null ]] || fail "stdin is $(readlink /proc/"$pid"/fd/0)"
[[ $(readlink /proc/"$pid"/fd/1) == "$LIVE_TMP/d.out" ]] || fail "stdout is $(readlink /proc/"$pid"/fd/1)"
[[ $(readlink /proc/"$pid"/fd/2) == "$LIVE_TMP/d.log" ]] || fail "stderr is $(readlink /proc/"$pid"/fd/2)"
grep -q "running in the background as pid $pid" d.log || fail "log lacks the pid line"
grep -q "capturing on $LIVE_HOST" d.log || fail "log lacks the start-up report"
echo "PASS: daemon started (pid $pid, session leader, no terminal, pidfile, log)"

# --- a second daemon on the same pidfile is refused ---
rc=0
"$FLOWER_SENSOR" -b -d "$LIVE_HOST" --pidfile d.pid --log d2.log >/dev/null 2>second.err || rc=$?
[[ $rc -eq 1 ]] || fail "second daemon exited $rc, want 1"
grep -q "already running as pid $pid" second.err || fail "no refusal line"
[[ $(wc -l <second.err) -eq 1 ]] || fail "refusal is not one line"
[[ $(cat d.pid) == "$pid" ]] || fail "pidfile changed"
echo "PASS: second daemon refused"

# send_stop_check PID NAME: send the plan to daemon PID, SIGTERM it, then
# check it exited, removed NAME.pid, and wrote exact records and counters.
send_stop_check() {
  live_send_plan
  sleep 0.5
  kill -TERM "$1"
  wait_gone "$1" || fail "$2: daemon did not exit after SIGTERM"
  [[ ! -e $2.pid ]] || fail "$2: pidfile left behind"
  /usr/bin/python3 "$here/check_live.py" "$2.out" "$2.stats" --front-end xdp --xdp-mode generic ||
    fail "$2: records/counters"
}

# --- traffic, SIGTERM: everything exported, pidfile removed ---
send_stop_check "$pid" d
grep -q "packets: 30 received, 30 metered" d.log || fail "log lacks the summary"
if ip -d link show "$LIVE_HOST" | grep -q "prog/xdp"; then fail "XDP program left attached"; fi
[[ ! -e /sys/fs/bpf/flower/$LIVE_HOST ]] || fail "pins left behind"
echo "PASS: SIGTERM exported every flow, removed the pidfile, detached"

# --- SIGKILL leaves a stale pidfile and program; the next daemon takes both over ---
"$FLOWER_SENSOR" -b -d "$LIVE_HOST" --capture xdp --xdp-mode generic --pidfile k.pid --log k.log --json >k.out 2>k.err ||
  fail "kill: start"
kpid=$(cat k.pid)
kill -KILL "$kpid"
wait_gone "$kpid" || fail "kill: daemon survived SIGKILL"
[[ -s k.pid ]] || fail "kill: expected a stale pidfile"
"$FLOWER_SENSOR" -b -d "$LIVE_HOST" --capture xdp --xdp-mode generic --pidfile k.pid --log k.log --json \
  --stats-json k.stats >k.out 2>k2.err || fail "kill: restart over a stale pidfile failed"
grep -q "replaced a stale flower_xdp left on $LIVE_HOST" k2.err || fail "kill: stale program not reported"
k2pid=$(cat k.pid)
[[ $k2pid != "$kpid" && -e /proc/$k2pid ]] || fail "kill: pidfile not rewritten"
send_stop_check "$k2pid" k
echo "PASS: a daemon killed with SIGKILL is replaced by the next one (stale pidfile and program)"

# --- a daemon that cannot start: the parent says why and fails ---
rc=0
"$FLOWER_SENSOR" -b -d "$LIVE_HOST" --capture xdp --zero-copy on --pidfile f.pid --log f.log \
  >/dev/null 2>fail.err || rc=$?
[[ $rc -eq 1 ]] || fail "failed daemon: parent exited $rc, want 1"
grep -q "cannot bind in zero-copy mode" fail.err || fail "parent did not relay the reason"
grep -q "cannot bind in zero-copy mode" f.log || fail "reason not logged"
[[ ! -e f.pid ]] || fail "failed daemon left its pidfile"
if ip -d link show "$LIVE_HOST" | grep -q "prog/xdp"; then fail "failed daemon left XDP attached"; fi
echo "PASS: a daemon that cannot start fails in the parent with its reason"

# --- usage: -b needs -d; --log/--pidfile need -b ---
rc=0; "$FLOWER_SENSOR" -b -r /dev/null 2>usage.err || rc=$?
[[ $rc -eq 2 ]] || fail "-b -r exited $rc, want 2"
rc=0; "$FLOWER_SENSOR" -d "$LIVE_HOST" --log x.log 2>usage.err || rc=$?
[[ $rc -eq 2 ]] || fail "--log without -b exited $rc, want 2"
echo "PASS: usage errors"

# --- syslog: our own /dev/log listener, if the machine has none ---
if [[ -e /dev/log ]]; then
  echo "NOTE: /dev/log exists (a system logger runs): syslog output not inspected"
else
  /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
out = open(sys.argv[1], "ab", buffering=0)
while True:
    out.write(s.recv(65536) + b"\n")
' syslog.txt &
  SYSLOG_PID=$!
  for i in $(seq 50); do [[ -S /dev/log ]] && break; sleep 0.1; done
  rc=0
  "$FLOWER_SENSOR" -b -d "$LIVE_HOST" --capture pcap --pidfile s.pid --json >s.out 2>s.err || rc=$?
  [[ $rc -eq 0 ]] || fail "syslog daemon: parent exited $rc"
  spid=$(cat s.pid)
  live_send_plan
  sleep 0.5
  kill -TERM "$spid"
  wait_gone "$spid" || fail "syslog daemon did not exit"
  [[ ! -e s.pid ]] || fail "syslog daemon left its pidfile"
  grep -q "flower-sensor\[$spid\]: capturing on $LIVE_HOST with pcap" syslog.txt || fail "no start-up line in syslog: $(cat syslog.txt)"
  grep -q "flower-sensor\[$spid\]: packets: 30 received, 30 metered" syslog.txt || fail "no summary in syslog"
  [[ $(wc -l <s.out) -eq 4 ]] || fail "syslog daemon wrote $(wc -l <s.out) records, want 4"
  echo "PASS: without --log the daemon logs to syslog"
fi
