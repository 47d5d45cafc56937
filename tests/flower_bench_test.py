#!/usr/bin/python3
"""flower-bench smoke test: small runs through the real engine, both feeds,
must reconcile their ledger and export exactly one record per flow; --repeat
prints one JSON object per run and a summary; bad flags fail cleanly.
Figures are not checked here (benchmarks are not timed tests).

Usage: flower_bench_test.py FLOWER_BENCH
"""
import json
import subprocess
import sys
import unittest

BENCH = None


def run(*args):
    return subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=300)


class FlowerBench(unittest.TestCase):
    def check_run(self, obj, flows, packets):
        self.assertEqual(obj["flows"], flows)
        self.assertEqual(obj["packets"], packets)
        self.assertEqual(obj["records"], flows)
        self.assertTrue(obj["ledger"]["reconciles"])
        self.assertEqual(obj["ledger"]["metered"], packets)
        for key in ("mpps", "threads", "ns_per_packet", "peak_rss_bytes", "table_bytes_per_flow"):
            self.assertIn(key, obj)
        self.assertLessEqual(obj["table_bytes_per_flow"], 128)

    def test_both_feeds_reconcile(self):
        for feed in ("queue", "dispatch"):
            with self.subTest(feed=feed):
                p = run("--flows", "2000", "--packets", "60000", "--threads", "2", "--feed", feed, "--json")
                self.assertEqual(p.returncode, 0, p.stderr)
                obj = json.loads(p.stdout)
                self.check_run(obj, 2000, 60000)
                self.assertEqual(obj["warmup_packets"], 2000)
                if feed == "queue":
                    # One rate per worker; no worker outlasts the run, so
                    # together they are at least the run's rate.
                    self.assertEqual(len(obj["worker_mpps"]), 2)
                    self.assertGreater(min(obj["worker_mpps"]), 0)
                    self.assertGreaterEqual(sum(obj["worker_mpps"]), obj["mpps"] * 0.999)
                else:
                    self.assertEqual(obj["worker_mpps"], [])

    def test_repeat_prints_every_run_and_a_summary(self):
        p = run("--flows", "1000", "--packets", "20000", "--threads", "1", "--repeat", "3", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 3)
        for obj in lines:
            self.check_run(obj, 1000, 20000)
        self.assertRegex(p.stderr, r"3 runs: best [0-9.]+ Mpps .* median [0-9.]+, worst [0-9.]+")

    def test_churn_and_ipv6_mix(self):
        p = run("--flows", "1000", "--packets", "50000", "--threads", "2", "--churn", "100000",
                "--v6-share", "0.5", "--size", "imix", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertTrue(obj["ledger"]["reconciles"])
        self.assertEqual(obj["warmup_packets"], 0)  # churned traffic is timed from its first packet
        self.assertGreater(obj["records"], 1000)     # churn retires flows and starts new ones

    def test_bad_flags(self):
        for args in (["--flows", "0"], ["--size", "12"], ["--feed", "nope"], ["--repeat", "0"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertNotEqual(p.returncode, 0)
                self.assertNotIn("Traceback", p.stderr)


if __name__ == "__main__":
    BENCH = sys.argv.pop(1)
    unittest.main(verbosity=2)
