#!/usr/bin/python3
"""flower-bench smoke test: small runs through the real engine, both feeds,
must reconcile their ledger and export exactly one record per flow; --repeat
prints one JSON object per run and a summary; bad flags fail cleanly;
a run longer than --prepare loops over the prepared packets and still
meters every one with exact record counts; a run that cannot fit in memory
is refused in one line before it allocates; --sweep writes one row per
point and stops at a failed one, and bench/sweep-plot draws its TSV.
Figures are not checked here (benchmarks are not timed tests).

Usage: flower_bench_test.py FLOWER_BENCH
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

BENCH = None
PLOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "sweep-plot")


def run(*args):
    return subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=300)


class FlowerBench(unittest.TestCase):
    def check_run(self, obj, flows, packets):
        self.assertEqual(obj["flows"], flows)
        self.assertEqual(obj["packets"], packets)
        self.assertEqual(obj["records"], flows)
        self.assertTrue(obj["ledger"]["conserved"])
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

    def test_publish_sends_every_record_to_the_sub_thread(self):
        # 2000 records fit the publisher's queue: none may be dropped, and
        # the SUB thread must have received every message sent.
        with tempfile.TemporaryDirectory(prefix="flower-bench-feed-") as d:
            for fmt in ("protobuf", "json"):
                with self.subTest(fmt=fmt):
                    endpoint = "ipc://" + os.path.join(d, fmt)
                    p = run("--flows", "2000", "--packets", "60000", "--threads", "2", "--publish", endpoint,
                            "--feed-format", fmt, "--json")
                    self.assertEqual(p.returncode, 0, p.stderr)
                    obj = json.loads(p.stdout)
                    self.check_run(obj, 2000, 60000)
                    pub = obj["publish"]
                    self.assertEqual((pub["endpoint"], pub["format"]), (endpoint, fmt))
                    self.assertEqual(pub["records_sent"], 2000)
                    self.assertEqual(pub["export_dropped"], 0)
                    self.assertGreaterEqual(pub["messages_sent"], 2)  # batches of at most 1024 records
                    self.assertEqual(pub["received_messages"], pub["messages_sent"])
                    self.assertGreater(pub["received_bytes"], 2000 * 50)
        p = run("--flows", "1000", "--packets", "20000", "--publish", "ipc:///nonexistent-dir/x", "--json")
        self.assertEqual(p.returncode, 1)
        self.assertIn("flower-bench:", p.stderr)

    def test_repeat_prints_every_run_and_a_summary(self):
        p = run("--flows", "1000", "--packets", "20000", "--threads", "1", "--repeat", "3", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 3)
        for obj in lines:
            self.check_run(obj, 1000, 20000)
        self.assertRegex(p.stderr, r"3 runs: best [0-9.]+ Mpps .* median [0-9.]+, worst [0-9.]+")

    def test_uniform_order(self):
        # Random rounds by default; slot order on request; both exact.
        for args, order in (([], "random"), (["--order", "slots"], "slots"), (["--zipf", "1.1"], "zipf")):
            with self.subTest(order=order):
                p = run("--flows", "1500", "--packets", "30000", "--threads", "2", "--json", *args)
                self.assertEqual(p.returncode, 0, p.stderr)
                obj = json.loads(p.stdout)
                self.assertEqual(obj["order"], order)
                self.assertTrue(obj["ledger"]["conserved"])
                if order != "zipf":
                    self.check_run(obj, 1500, 30000)

    def test_churn_and_ipv6_mix(self):
        p = run("--flows", "1000", "--packets", "50000", "--threads", "2", "--churn", "100000",
                "--v6-share", "0.5", "--size", "imix", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertTrue(obj["ledger"]["conserved"])
        self.assertEqual(obj["warmup_packets"], 0)  # churned traffic is timed from its first packet
        self.assertGreater(obj["records"], 1000)     # churn retires flows and starts new ones

    def test_long_runs_loop_over_prepared_packets(self):
        # 60001 packets from 10000 prepared: 6 whole loops and one packet.
        for feed in ("queue", "dispatch"):
            with self.subTest(feed=feed):
                p = run("--flows", "2000", "--packets", "60001", "--prepare", "10000", "--threads", "2",
                        "--feed", feed, "--json")
                self.assertEqual(p.returncode, 0, p.stderr)
                obj = json.loads(p.stdout)
                self.assertEqual(obj["prepared_packets"], 10000)
                self.assertEqual(obj["loops"], 7)
                self.check_run(obj, 2000, 60001)
                self.assertEqual(obj["record_packets"], 60001)
        # Zipf and slot order loop too; the same flows go on.
        for extra in (["--zipf", "1.1"], ["--order", "slots"]):
            with self.subTest(extra=extra):
                p = run("--flows", "1500", "--packets", "45000", "--prepare", "9000", "--threads", "2", "--json", *extra)
                self.assertEqual(p.returncode, 0, p.stderr)
                obj = json.loads(p.stdout)
                self.assertEqual(obj["loops"], 5)
                self.assertEqual(obj["ledger"]["metered"], 45000)
                self.assertEqual(obj["record_packets"], 45000)
                self.assertEqual(obj["records"], obj["flows"])

    def test_replay_loops_over_prepared_passes(self):
        # Passes of the capture built in memory are looped; the records are
        # those of the fully built replay, every pass new flows.
        sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sample.pcap")
        one = json.loads(run("--replay", sample, "--threads", "2", "--json").stdout)
        n = one["packets"]
        self.assertGreater(one["records"], 0)
        full = run("--replay", sample, "--packets", str(8 * n + 3), "--threads", "2", "--json")
        looped = run("--replay", sample, "--packets", str(8 * n + 3), "--prepare", str(2 * n), "--threads", "2",
                     "--json")
        for p in (full, looped):
            self.assertEqual(p.returncode, 0, p.stderr)
        full, looped = json.loads(full.stdout), json.loads(looped.stdout)
        self.assertEqual(full["loops"], 1)
        self.assertEqual(looped["prepared_packets"], 2 * n)
        self.assertEqual(looped["loops"], 5)
        for key in ("packets", "records", "record_packets"):
            self.assertEqual(looped[key], full[key], key)
        self.assertEqual(looped["ledger"]["metered"], full["ledger"]["metered"])
        self.assertEqual(looped["ledger"]["received"], 8 * n + 3)
        self.assertTrue(looped["ledger"]["conserved"])

    def test_churned_loops_are_new_flows(self):
        # Each loop's flows are new: records are the loop's flows three times.
        p = run("--flows", "1000", "--packets", "30000", "--prepare", "10000", "--threads", "2",
                "--churn", "100000", "--v6-share", "0.5", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual(obj["loops"], 3)
        self.assertGreater(obj["flows"], 1000)
        self.assertEqual(obj["records"], 3 * obj["flows"])
        self.assertEqual(obj["record_packets"], 30000)
        self.assertEqual(obj["flows_evicted"], 0)
        self.assertTrue(obj["ledger"]["conserved"])

    def test_prepares_at_least_one_round(self):
        # --prepare below one packet per flow still prepares one round.
        p = run("--flows", "3000", "--packets", "9000", "--prepare", "100", "--threads", "1", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        self.assertEqual(obj["prepared_packets"], 3000)
        self.assertEqual(obj["loops"], 3)
        self.check_run(obj, 3000, 9000)

    def refused(self, *args):
        """Runs flower-bench alone and returns (exit status, stderr, its own peak RSS in bytes)."""
        with tempfile.TemporaryFile() as err:
            child = subprocess.Popen([BENCH, *args], stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            return child.returncode, err.read().decode(), usage.ru_maxrss * 1024

    def test_refuses_what_memory_cannot_hold(self):
        # One round of 4e9 flows, or tables for 4e9 flows, is far beyond any
        # test machine: refused before allocating, in one line.
        for args in (["--flows", "4000000000"], ["--flows", "1000", "--max-flows", "4000000000"]):
            with self.subTest(args=args):
                rc, err, rss = self.refused(*args, "--threads", "2")
                self.assertEqual(rc, 1, err)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertRegex(err, r"^flower-bench: this run needs [0-9.]+ GB of memory \(flow tables [0-9.]+ GB, "
                                      r"[0-9]+ prepared packets [0-9.]+ GB\), MemAvailable is [0-9.]+ GB$")
                self.assertLess(rss, 64 << 20, "allocated before refusing")

    def test_hash_seed(self):
        # Records do not depend on the seed; the flag is documented.
        for seed in ("1", "18446744073709551615"):
            p = run("--flows", "1000", "--packets", "20000", "--threads", "2", "--hash-seed", seed, "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.check_run(json.loads(p.stdout), 1000, 20000)
        self.assertNotEqual(run("--hash-seed", "x").returncode, 0)
        h = run("--help")
        for flag in ("--hash-seed", "--prepare"):
            self.assertIn(flag, h.stdout)

    def test_bad_flags(self):
        for args in (["--flows", "0"], ["--size", "12"], ["--feed", "nope"], ["--repeat", "0"], ["--order", "nope"]):
            with self.subTest(args=args):
                p = run(*args)
                self.assertNotEqual(p.returncode, 0)
                self.assertNotIn("Traceback", p.stderr)


class Sweep(unittest.TestCase):
    """--sweep with small points: one TSV row per point, from a fresh
    process each; a failed point stops the sweep with an error naming it;
    bench/sweep-plot turns one or two sweeps into a PNG."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.tsv = os.path.join(self.dir.name, "sweep.tsv")

    def tearDown(self):
        self.dir.cleanup()

    def sweep(self, *extra):
        return run("--sweep", "--sweep-flows", "1000,3000", "--sweep-churn", "50000", "--packets", "150000",
                   "--threads", "2", "--sweep-out", self.tsv, *extra)

    def test_one_row_per_point(self):
        p = self.sweep()
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.tsv, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        points = [(r["kind"], int(r["flows"]), float(r["churn_per_sec"])) for r in rows]
        self.assertEqual(points, [("flows", 1000, 0.0), ("flows", 3000, 0.0), ("churn", 100000, 50000.0)])
        for r in rows:
            self.assertEqual(r["threads"], "2")
            self.assertEqual(r["packets"], "150000")
            self.assertGreater(float(r["mpps"]), 0)
            self.assertAlmostEqual(float(r["mpps_per_core"]) * 2, float(r["mpps"]), delta=0.01)
            self.assertLessEqual(float(r["table_bytes_per_flow"]), 128)
        self.assertIn("wrote " + self.tsv, p.stderr)

        png = os.path.join(self.dir.name, "sweep.png")
        q = subprocess.run(["/usr/bin/python3", PLOT, self.tsv + "=this run", self.tsv, png],
                           capture_output=True, text=True, timeout=120)
        if "needs python3-matplotlib" in q.stderr:
            self.skipTest("python3-matplotlib is not installed (scripts/setup installs it)")
        self.assertEqual(q.returncode, 0, q.stderr)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_a_failed_point_stops_the_sweep(self):
        p = self.sweep("--size", "12")  # every child rejects the size
        self.assertEqual(p.returncode, 1)
        self.assertIn("--size must be", p.stderr)
        self.assertIn("sweep point flows flows=1000 churn=0 failed (exit status 1)", p.stderr)
        with open(self.tsv) as f:
            self.assertEqual(len(f.read().splitlines()), 1)  # the header only: no row of zeros

    def test_rejects_what_each_point_sets(self):
        for extra in (["--replay", "x.pcap"], ["--max-flows", "1000"]):
            with self.subTest(extra=extra):
                p = self.sweep(*extra)
                self.assertEqual(p.returncode, 1)
                self.assertRegex(p.stderr, "--sweep .*does not take " + extra[0])

    def test_plot_rejects_what_is_not_a_sweep(self):
        with open(self.tsv, "w") as f:
            f.write("a\tb\n1\t2\n")
        q = subprocess.run(["/usr/bin/python3", PLOT, self.tsv, os.path.join(self.dir.name, "x.png")],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(q.returncode, 1)
        self.assertIn("is not a flower-bench --sweep TSV", q.stderr)
        self.assertNotIn("Traceback", q.stderr)


if __name__ == "__main__":
    BENCH = sys.argv.pop(1)
    unittest.main(verbosity=2)
