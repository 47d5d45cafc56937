#!/usr/bin/python3
"""CURVE on the ZeroMQ feed end to end, with the real tools (docs/feed.md, "Security").

- flower-keys makes PREFIX.pub and PREFIX.secret (0600) and never overwrites;
- flower-sensor --publish with --feed-secret-key/--feed-allowed-keys into
  flower-sub --secret-key/--server-key delivers every record of
  tests/data/sample.pcap, equal to flower-sensor --json; the same with -s into
  flower-sub --bind --allowed-keys (the sensor is then the CURVE client);
- a subscriber whose key is not allowed receives nothing, and the sensor says
  how many handshakes it refused;
- bad key files and missing companions give one stderr line and exit 2.

Usage: feed_curve_e2e_test.py SENSOR SUB KEYS
"""
import os
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

SENSOR = SUB = KEYS = None
SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sample.pcap")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Curve(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="flower-curve-e2e-")
        self.dir = self.tmp.name
        for name in ("sensor", "sub", "stranger"):
            p = subprocess.run([KEYS, self.path(name)], capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.copy("sub.pub", "allowed")
        p = subprocess.run([SENSOR, "-q", "-r", SAMPLE, "--json"], capture_output=True, timeout=60)
        self.want = sorted(p.stdout.decode().splitlines())
        self.assertTrue(self.want)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def copy(self, src, dst):
        """An allowed-keys file is the peers' .pub files concatenated."""
        with open(self.path(dst), "w") as f:
            f.write(self.read(src))

    def run_pair(self, sub_args, sensor_args, count, timeout):
        sub = subprocess.Popen([SUB, "--json", "--count", str(count), "--timeout", str(timeout)] + sub_args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sensor = subprocess.run([SENSOR, "-r", SAMPLE, "--wait-subscribers", "1", "--wait-timeout", str(timeout)]
                                + sensor_args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        out, err = sub.communicate(timeout=120)
        return sub.returncode, out.decode().splitlines(), err.decode(), sensor

    def test_keys_files(self):
        mode = stat.S_IMODE(os.stat(self.path("sensor.secret")).st_mode)
        self.assertEqual(mode, 0o600)
        pub = [l for l in self.read("sensor.pub").splitlines() if not l.startswith("#")]
        self.assertEqual(len(pub), 1)
        self.assertEqual(len(pub[0].strip()), 40)
        self.assertIn("public-key " + pub[0].strip(), self.read("sensor.secret"))
        again = subprocess.run([KEYS, self.path("sensor")], capture_output=True, timeout=30)
        self.assertEqual(again.returncode, 1)
        self.assertIn("sensor.pub: cannot create: File exists", again.stderr.decode())

    def test_publish_with_right_keys_delivers_every_record(self):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        rc, got, err, sensor = self.run_pair(
            ["--connect", endpoint, "--secret-key", self.path("sub.secret"), "--server-key", self.path("sensor.pub")],
            ["--publish", endpoint, "--feed-secret-key", self.path("sensor.secret"),
             "--feed-allowed-keys", self.path("allowed")], len(self.want), 60)
        self.assertEqual(sensor.returncode, 0, sensor.stderr.decode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(got), self.want)
        self.assertNotIn("refused", sensor.stderr.decode())

    def test_collector_mode_with_right_keys_delivers_every_record(self):
        port = free_port()
        self.copy("sensor.pub", "sensors")
        rc, got, err, sensor = self.run_pair(
            ["--bind", "tcp://127.0.0.1:%d" % port, "--secret-key", self.path("sub.secret"),
             "--allowed-keys", self.path("sensors")],
            ["-s", "127.0.0.1:%d" % port, "--feed-secret-key", self.path("sensor.secret"),
             "--feed-server-key", self.path("sub.pub")], len(self.want), 60)
        self.assertEqual(sensor.returncode, 0, sensor.stderr.decode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(got), self.want)

    def test_key_not_allowed_receives_nothing(self):
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        rc, got, err, sensor = self.run_pair(
            ["--connect", endpoint, "--secret-key", self.path("stranger.secret"),
             "--server-key", self.path("sensor.pub")],
            ["--publish", endpoint, "--feed-secret-key", self.path("sensor.secret"),
             "--feed-allowed-keys", self.path("allowed")], 1, 3)
        self.assertEqual(rc, 2, err)  # --count 1 not reached
        self.assertEqual(got, [])
        self.assertEqual(sensor.returncode, 0, sensor.stderr.decode())
        e = sensor.stderr.decode()
        self.assertIn("0 of 1 subscribers", e)
        self.assertRegex(e, r"feed: refused [1-9][0-9]* CURVE handshakes \(key not in .*allowed\)")

    def expect_usage_error(self, argv, text):
        p = subprocess.run(argv, capture_output=True, timeout=30)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 2, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(text, err)

    def test_bad_key_files_exit_2_with_one_line(self):
        os.chmod(self.path("sub.secret"), 0o644)
        with open(self.path("garbage"), "w") as f:
            f.write("not-a-key\n")
        pub = ["--publish", "ipc://" + self.path("feed")]
        secret = self.path("sensor.secret")
        self.expect_usage_error([SENSOR, "-r", SAMPLE] + pub + ["--feed-secret-key", self.path("nope"),
                                                                "--feed-allowed-keys", self.path("allowed")],
                                self.path("nope") + ": cannot read: No such file or directory")
        self.expect_usage_error([SENSOR, "-r", SAMPLE] + pub + ["--feed-secret-key", self.path("sub.secret"),
                                                                "--feed-allowed-keys", self.path("allowed")],
                                "sub.secret: secret key file is accessible by group or others (mode 0644)")
        self.expect_usage_error([SENSOR, "-r", SAMPLE] + pub + ["--feed-secret-key", self.path("sensor.pub"),
                                                                "--feed-allowed-keys", self.path("allowed")],
                                "sensor.pub: secret key file is accessible")
        self.expect_usage_error([SENSOR, "-r", SAMPLE] + pub + ["--feed-secret-key", secret,
                                                                "--feed-allowed-keys", self.path("garbage")],
                                self.path("garbage") + ":1: 'not-a-key' is not a CURVE key (9 characters")
        self.expect_usage_error([SENSOR, "-r", SAMPLE] + pub + ["--feed-secret-key", secret],
                                "--publish with --feed-secret-key needs --feed-allowed-keys")
        self.expect_usage_error([SENSOR, "-r", SAMPLE, "-s", "127.0.0.1", "--feed-secret-key", secret],
                                "-s with --feed-secret-key needs --feed-server-key")
        self.expect_usage_error([SUB, "--secret-key", secret, "--server-key", self.path("garbage")],
                                self.path("garbage") + ":1: 'not-a-key' is not a CURVE key")
        self.expect_usage_error([SUB, "--secret-key", self.path("sub.secret"), "--server-key", self.path("sensor.pub")],
                                "sub.secret: secret key file is accessible by group or others")
        self.expect_usage_error([SUB, "--secret-key", secret], "--connect with --secret-key needs --server-key")


if __name__ == "__main__":
    SENSOR, SUB, KEYS = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
