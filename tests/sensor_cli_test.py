#!/usr/bin/python3
"""flower-sensor end to end, as a user runs it.

- bad input (missing, empty, truncated, non-pcap file, unknown link type,
  bad flags) gives one clear stderr line and a non-zero exit, never a crash;
- --stats-json balances the packet ledger for every shared capture;
- on generated traffic with ground truth, records match the truth exactly
  (flows, packets and IP bytes per direction, each flow exported once).

Usage: sensor_cli_test.py SENSOR_BINARY
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

SENSOR = None
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))
SAMPLE = os.path.join(HERE, "data", "sample.pcap")


def load_json(path):
    with open(path) as f:
        return json.load(f)


def run(*args, stdin=None):
    return subprocess.run([SENSOR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=stdin, timeout=300)


class BadInput(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name, data):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def assert_one_line_error(self, proc, *needles):
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertGreater(proc.returncode, 0, "killed by a signal: %d" % proc.returncode)
        err = proc.stderr.decode()
        lines = [l for l in err.splitlines() if l.startswith("flower-sensor:")]
        self.assertEqual(len(lines), 1, err)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_missing_file(self):
        self.assert_one_line_error(run("-r", os.path.join(self.dir, "nope.pcap"), "-q"), "nope.pcap", "No such file")

    def test_empty_file(self):
        self.assert_one_line_error(run("-r", self.path("empty.pcap", b""), "-q"), "empty")

    def test_not_a_capture(self):
        self.assert_one_line_error(run("-r", self.path("text.pcap", b"hello world, not a capture\n" * 4), "-q"),
                                   "not a pcap or pcapng file")

    def test_directory(self):
        self.assert_one_line_error(run("-r", self.dir, "-q"))

    def test_unknown_link_type(self):
        hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)
        rec = struct.pack("<IIII", 1, 0, 4, 4) + b"\0\0\0\0"
        self.assert_one_line_error(run("-r", self.path("dlt147.pcap", hdr + rec), "-q"), "link type 147")

    def test_truncated_file_exports_what_was_read(self):
        data = open(SAMPLE, "rb").read()
        cut = self.path("cut.pcap", data[: len(data) // 2 + 7])
        stats = os.path.join(self.dir, "stats.json")
        proc = run("-r", cut, "--json", "-q", "--stats-json", stats)
        self.assert_one_line_error(proc, "cut.pcap")
        records = [json.loads(l) for l in proc.stdout.decode().splitlines()]
        self.assertGreater(len(records), 0)
        st = load_json(stats)
        self.assertTrue(st["input_truncated"])
        self.assertTrue(st["conserved"])
        self.assertEqual(sum(r["packets"] + r["rev_packets"] for r in records), st["metered"])

    def test_bad_flags(self):
        for args in (["--max-flows", "zero", "-r", SAMPLE], ["--idle-timeout", "-5", "-r", SAMPLE],
                     ["--no-such-flag", "-r", SAMPLE], []):
            proc = run(*args)
            self.assert_one_line_error(proc)
            self.assertEqual(proc.returncode, 2, args)

    def test_bad_filter(self):
        self.assert_one_line_error(run("-r", SAMPLE, "-q", "tcp", "port", "banana"))

    def test_help(self):
        proc = run("--help")
        self.assertEqual(proc.returncode, 0)
        out = proc.stdout.decode()
        for flag in ("-r", "--json", "--max-flows", "--idle-timeout", "--active-timeout", "--stats-json", "--threads"):
            self.assertIn(flag, out)


class Ledger(unittest.TestCase):
    def test_every_shared_capture_balances(self):
        manifest = os.path.join(SHARED, "pcaps", "manifest.tsv")
        if not os.path.exists(manifest):
            self.skipTest("no ../shared/pcaps")
        with open(manifest) as f:
            header = f.readline().rstrip("\n").split("\t")
            rows = [dict(zip(header, l.rstrip("\n").split("\t"))) for l in f if l.strip()]
        with tempfile.TemporaryDirectory() as d:
            for row in rows:
                name = row["file"]
                stats = os.path.join(d, "s.json")
                proc = run("-r", os.path.join(SHARED, "pcaps", name), "--json", "-q", "--stats-json", stats)
                self.assertEqual(proc.returncode, 0, name + ": " + proc.stderr.decode())
                st = load_json(stats)
                self.assertTrue(st["conserved"], name)
                self.assertEqual(st["received"], int(row["packets"]), name)
                records = [json.loads(l) for l in proc.stdout.decode().splitlines()]
                self.assertEqual(len(records), st["flows"]["records"], name)
                self.assertEqual(sum(r["packets"] + r["rev_packets"] for r in records), st["metered"], name)


class GroundTruth(unittest.TestCase):
    def check(self, *gen_args):
        gen = os.path.join(SHARED, "tools", "gen_pcap.py")
        if not os.path.exists(gen):
            self.skipTest("no ../shared/tools/gen_pcap.py")
        with tempfile.TemporaryDirectory() as d:
            pcap, truth_path = os.path.join(d, "g.pcap"), os.path.join(d, "g.json")
            subprocess.run(["/usr/bin/python3", gen, "-o", pcap, "--truth", truth_path, *gen_args],
                           check=True, stdout=subprocess.DEVNULL)
            truth = load_json(truth_path)
            proc = run("-r", pcap, "--json", "-q")
            self.assertEqual(proc.returncode, 0, proc.stderr.decode())
            records = [json.loads(l) for l in proc.stdout.decode().splitlines()]
            self.assertEqual(len(records), truth["flows"])
            keys = {(r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"]) for r in records}
            self.assertEqual(len(keys), truth["flows"], "a flow was exported twice")
            self.assertEqual(sum(r["packets"] for r in records), truth["packets_c2s"])
            self.assertEqual(sum(r["rev_packets"] for r in records), truth["packets_s2c"])
            self.assertEqual(sum(r["bytes"] for r in records), truth["ip_bytes_c2s"])
            self.assertEqual(sum(r["rev_bytes"] for r in records), truth["ip_bytes_s2c"])
            self.assertEqual(sum(r["frame_bytes"] + r["rev_frame_bytes"] for r in records), truth["frame_bytes"])
            self.assertEqual(sum(1 for r in records if r["ip_version"] == 6), truth["flows_v6"])
            self.assertEqual(sum(1 for r in records if r["proto"] == 6), truth["flows_tcp"])

    def test_uniform_mixed_families(self):
        self.check("--packets", "20000", "--flows", "1000", "--v6-share", "0.3")

    def test_zipf_imix_nanoseconds(self):
        self.check("--packets", "20000", "--flows", "3000", "--zipf", "1.1", "--size", "imix", "--ts", "ns",
                   "--v6-share", "0.5", "--proto-mix", "tcp:50,udp:50")


if __name__ == "__main__":
    SENSOR = sys.argv.pop(1)
    unittest.main(verbosity=2)
