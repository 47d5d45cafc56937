#!/usr/bin/python3
"""The ZeroMQ feed end to end, offline, with real sockets (docs/feed.md).

- flower-sensor -r CAPTURE --publish ipc://... into flower-sub --json gives
  exactly the records of flower-sensor -r CAPTURE --json, field for field,
  each once, in both encodings, for tests/data/sample.pcap and every shared
  capture (the subscriber is up first; --wait-subscribers closes the
  slow-joiner gap);
- the same through -s HOST:PORT into a flower-sub that binds (connect mode);
- the Python example subscriber (examples/feed_subscriber.py) receives the
  same records (plus flow_id) in both encodings;
- the sensor's ledger says the exporter dropped nothing, and the final
  "stats" message carries that ledger.

Usage: feed_e2e_test.py SENSOR SUB PYTHONPATH_FOR_flower.v1
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

import shared_data

SENSOR = SUB = PYPATH = None
HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "data", "sample.pcap")
EXAMPLE = os.path.join(HERE, "..", "examples", "feed_subscriber.py")
PCAPS = os.path.join(shared_data.shared_dir(), "pcaps")


def shared_captures():
    if not os.path.isdir(PCAPS):
        return []
    return sorted(os.path.join(PCAPS, n) for n in os.listdir(PCAPS) if n.endswith((".pcap", ".pcapng", ".cap")))


def reference(capture):
    """Sorted JSON lines of flower-sensor --json (the multi-core engine's record order may vary)."""
    p = subprocess.run([SENSOR, "-q", "-r", capture, "--json"], capture_output=True, timeout=120)
    return p.returncode, sorted(p.stdout.decode().splitlines())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Feed(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="flower-feed-e2e-")

    def tearDown(self):
        self.tmp.cleanup()

    def run_pair(self, capture, count, fmt, subscriber, sensor_feed_args, extra_sensor_args=()):
        """Start `subscriber` (argv), then the publishing sensor; returns (sub stdout lines, sub stderr, stats)."""
        stats = os.path.join(self.tmp.name, "stats.json")
        env = dict(os.environ, PYTHONPATH=PYPATH)
        sub = subprocess.Popen(subscriber + ["--count", str(count), "--timeout", "60"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
        sensor = subprocess.run([SENSOR, "-q", "-r", capture, "--feed-format", fmt, "--wait-subscribers", "1",
                                 "--wait-timeout", "30", "--sensor-id", "e2e", "--stats-json", stats]
                                + sensor_feed_args + list(extra_sensor_args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        out, err = sub.communicate(timeout=90)
        self.assertEqual(sensor.returncode, 0, sensor.stderr.decode())
        self.assertEqual(sub.returncode, 0, "subscriber: " + err.decode() + "\nsensor: " + sensor.stderr.decode())
        with open(stats) as f:
            ledger = json.load(f)
        return out.decode().splitlines(), err.decode(), ledger

    def check_capture(self, capture, fmt):
        rc, want = reference(capture)
        self.assertIn(rc, (0, 1))  # 1: a capture that ends inside a record (still exported)
        if not want:
            return
        endpoint = "ipc://" + os.path.join(self.tmp.name, "feed")
        got, err, ledger = self.run_pair(capture, len(want), fmt, [SUB, "--connect", endpoint, "--json"],
                                         ["--publish", endpoint])
        self.assertEqual(sorted(got), want)
        self.assertIn("lost 0 messages (0 records) in 0 gaps", err)
        self.assertEqual(ledger["output"]["exporter_dropped"], 0)

    def test_sample_into_flower_sub_both_encodings(self):
        for fmt in ("protobuf", "json"):
            with self.subTest(fmt=fmt):
                self.check_capture(SAMPLE, fmt)

    def test_every_shared_capture_both_encodings(self):
        captures = shared_captures()
        if not captures:
            self.skipTest(shared_data.no_shared_data(PCAPS))
        for capture in captures:
            for fmt in ("protobuf", "json"):
                with self.subTest(capture=os.path.basename(capture), fmt=fmt):
                    self.check_capture(capture, fmt)

    def test_connect_mode_into_a_binding_subscriber(self):
        _, want = reference(SAMPLE)
        port = free_port()
        for fmt in ("protobuf", "json"):
            with self.subTest(fmt=fmt):
                got, _, _ = self.run_pair(SAMPLE, len(want), fmt,
                                          [SUB, "--bind", "tcp://127.0.0.1:%d" % port, "--json"],
                                          ["-s", "127.0.0.1:%d" % port])
                self.assertEqual(sorted(got), want)

    def test_python_example_receives_every_record(self):
        probe = subprocess.run(["/usr/bin/python3", "-c", "import zmq, google.protobuf"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("python3-zmq or python3-protobuf is not installed (scripts/setup installs them)")
        _, want = reference(SAMPLE)
        endpoint = "ipc://" + os.path.join(self.tmp.name, "py")
        for fmt in ("protobuf", "json"):
            with self.subTest(fmt=fmt):
                got, _, _ = self.run_pair(SAMPLE, len(want), fmt,
                                          ["/usr/bin/python3", EXAMPLE, "--connect", endpoint, "--json"],
                                          ["--publish", endpoint])
                records = [json.loads(l) for l in got]
                for r in records:
                    self.assertIsInstance(r.pop("flow_id"), int)
                self.assertEqual(sorted(json.dumps(r, separators=(",", ":")) for r in records), want)

    def test_stats_topic_carries_the_final_ledger(self):
        _, want = reference(SAMPLE)
        endpoint = "ipc://" + os.path.join(self.tmp.name, "stats")
        for fmt in ("protobuf", "json"):
            with self.subTest(fmt=fmt):
                # --count covers the records; the stats message follows them before the sensor exits.
                sub = subprocess.Popen([SUB, "--connect", endpoint, "--json", "--stats", "--timeout", "20"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                sensor = subprocess.run([SENSOR, "-q", "-r", SAMPLE, "--publish", endpoint, "--feed-format", fmt,
                                         "--wait-subscribers", "1", "--wait-timeout", "30"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
                self.assertEqual(sensor.returncode, 0, sensor.stderr.decode())
                sub.send_signal(2)  # SIGINT: prints the summary and exits
                out, err = sub.communicate(timeout=30)
                lines = [json.loads(l) for l in out.decode().splitlines()]
                stats = [l for l in lines if "stats" in l]
                self.assertEqual(len(stats), 1, err.decode())
                ledger = stats[0]["stats"]["ledger"]
                self.assertEqual(int(ledger["received"]), 136)
                self.assertEqual(int(ledger["flows"]["records"]), len(want))
                self.assertTrue(ledger["conserved"])
                self.assertEqual(len(lines) - 1, len(want))
                self.assertIn("received %d records" % len(want), err.decode())


if __name__ == "__main__":
    SENSOR, SUB, PYPATH = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
