#!/usr/bin/python3
"""flower-sensor end to end, as a user runs it.

- bad input (missing, empty, truncated, non-pcap file, unknown link type,
  bad flags) gives one clear stderr line and a non-zero exit, never a crash;
- a --max-flows beyond the machine's MemAvailable is refused at start in one
  line saying what it needs and what is available; --hash-seed is reported in
  --stats-json and records do not depend on it;
- --stats-json balances the packet ledger for every shared capture, checked
  here from its own fields (not only its "conserved" verdict), at 1 and 4
  threads;
- every JSON field is documented in docs/records.md with an IPFIX element,
  end reasons carry their flowEndReason code, every record has a Community ID;
- records are the same set, end reasons included, for --threads 1, 2 and 4
  on every shared capture;
- on generated traffic with ground truth, records match the truth exactly
  (flows, packets and IP bytes per direction, each flow exported once) at
  1, 2 and 4 threads.

Usage: sensor_cli_test.py SENSOR_BINARY
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

import shared_data

SENSOR = None
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = shared_data.shared_dir()  # FLOWER_SHARED_DIR or ../shared
SAMPLE = os.path.join(HERE, "data", "sample.pcap")
PCAPS = os.path.join(SHARED, "pcaps")
RECORDS_MD = os.path.join(HERE, "..", "docs", "records.md")
END_REASON_CODES = {"idle": 1, "active": 2, "tcp_end": 3, "shutdown": 4, "evicted": 5}  # IPFIX flowEndReason
COMMUNITY_ID = re.compile(r"^1:[A-Za-z0-9+/]{27}=$")  # v1: base64 of a 20-byte SHA-1

def shared_captures():
    if not os.path.isdir(PCAPS):
        return []
    return sorted(n for n in os.listdir(PCAPS) if n.endswith((".pcap", ".pcapng", ".cap")))


def sample_bytes():
    with open(SAMPLE, "rb") as f:
        return f.read()


def records_of(proc):
    return [json.loads(l) for l in proc.stdout.decode().splitlines()]


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

    def test_unknown_link_type_pcapng(self):
        shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
        idb = struct.pack("<IIHHII", 1, 20, 147, 0, 65535, 20)
        self.assert_one_line_error(run("-r", self.path("dlt147.pcapng", shb + idb), "-q"), "link type 147")

    def test_packet_on_undeclared_interface_is_counted(self):
        # One Ethernet interface (0); one packet on it, one naming interface 5.
        shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
        idb = struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20)
        frame = b"\xff" * 12 + b"\x08\x06" + b"\0" * 46  # ARP ethertype: not IP

        def epb(interface):
            body = struct.pack("<IIIII", interface, 0, 1, len(frame), len(frame)) + frame
            return struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

        path = self.path("undeclared.pcapng", shb + idb + epb(0) + epb(5))
        stats_path = os.path.join(self.dir, "undeclared.json")
        proc = run("-r", path, "-q", "--stats-json", stats_path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(stats_path) as f:
            stats = json.load(f)
        self.assertEqual(stats["received"], 1)
        self.assertEqual(stats["source_dropped"], 1)
        self.assertTrue(stats["conserved"])
        self.assertEqual(stats["file"], {"bad_interface": 1, "bad_timestamp": 0})

    def test_record_with_an_impossible_time_is_skipped_and_counted(self):
        # Three UDP packets of one flow in a microsecond pcap; the middle one
        # claims 1,500,000 microseconds past its second (no time at all).
        hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + struct.pack("!HHHH", 1000, 53, 8, 0)

        def rec(sec, usec):
            return struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame

        path = self.path("badtime.pcap", hdr + rec(100, 0) + rec(100, 1500000) + rec(101, 0))
        stats_path = os.path.join(self.dir, "badtime.json")
        proc = run("-r", path, "-q", "--json", "--stats-json", stats_path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        stats = load_json(stats_path)
        self.assertEqual(stats["file"], {"bad_interface": 0, "bad_timestamp": 1})
        self.assertEqual(stats["source_dropped"], 1)
        self.assertEqual(stats["received"], 2)
        self.assertEqual(stats["metered"], 2)
        self.assertTrue(stats["conserved"])
        records = records_of(proc)
        self.assertEqual(len(records), 1, records)
        self.assertEqual(records[0]["packets"] + records[0]["rev_packets"], 2)

    def test_truncated_header(self):
        self.assert_one_line_error(run("-r", self.path("short.pcap", sample_bytes()[:20]), "-q"),
                                   "too short")

    def test_not_a_capture_on_stdin(self):
        with open(self.path("text", b"definitely not a capture file\n"), "rb") as f:
            self.assert_one_line_error(run("-r", "-", "-q", stdin=f), "stdin", "not a pcap or pcapng file")

    def test_unwritable_stats_path(self):
        self.assert_one_line_error(run("-r", SAMPLE, "-q", "--stats-json", os.path.join(self.dir, "no", "s.json")),
                                   "cannot write")

    def test_truncated_file_exports_what_was_read(self):
        data = sample_bytes()
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
        for args in (["--max-flows", "zero", "-r", SAMPLE], ["--max-flows", "0", "-r", SAMPLE],
                     ["--idle-timeout", "-5", "-r", SAMPLE], ["--active-timeout", "soon", "-r", SAMPLE],
                     ["--threads", "-1", "-r", SAMPLE], ["--no-such-flag", "-r", SAMPLE], ["-r"],
                     ["-r", SAMPLE, "-i", "lo"], []):
            proc = run(*args)
            self.assert_one_line_error(proc)
            self.assertEqual(proc.returncode, 2, args)

    def test_bad_filter(self):
        self.assert_one_line_error(run("-r", SAMPLE, "-q", "tcp", "port", "banana"))

    def test_help(self):
        proc = run("--help")
        self.assertEqual(proc.returncode, 0)
        out = proc.stdout.decode()
        for flag in ("-r", "--json", "--max-flows", "--idle-timeout", "--active-timeout", "--stats-json", "--threads",
                     "--hash-seed", "--assume-symmetric-rss"):
            self.assertIn(flag, out)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


class Startup(unittest.TestCase):
    """What the sensor refuses or fixes before it reads a packet."""

    def test_max_flows_beyond_memory_is_refused_at_start(self):
        flows = 1 << 30  # the largest --max-flows: tens of GiB of flow table
        avail = mem_available()
        if avail is None or avail > (1 << 40):
            self.skipTest("MemAvailable unknown or above 1 TiB: 2^30 flows may fit here")
        for args in (["-r", SAMPLE], ["-r", SAMPLE, "--threads", "4"], ["-i", "lo"]):
            with self.subTest(args=args):
                proc = run("--max-flows", str(flows), "-q", *args)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertEqual(proc.stdout, b"")
                lines = proc.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                m = re.match(r"flower-sensor: --max-flows %d needs ([0-9.]+) GiB \(flow tables and fragment "
                             r"caches\); ([0-9.]+) GiB is available \(MemAvailable" % flows, lines[0])
                self.assertIsNotNone(m, lines[0])
                need, have = float(m.group(1)), float(m.group(2))
                self.assertGreater(need, have)
                self.assertGreater(need, flows * 32 / (1 << 30))  # at least a key and counters per flow
                self.assertAlmostEqual(have, avail / (1 << 30), delta=max(0.5, have * 0.1))

    def test_max_flows_that_fits_runs(self):
        proc = run("--max-flows", "1000", "-r", SAMPLE, "-q", "--json")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertGreater(len(records_of(proc)), 0)

    def test_hash_seed_is_reported_and_records_do_not_depend_on_it(self):
        with tempfile.TemporaryDirectory() as d:
            stats = os.path.join(d, "s.json")
            outputs = {}
            for seed in ("1", "18446744073709551615"):
                for threads in ("1", "4"):
                    proc = run("-r", SAMPLE, "--json", "-q", "--threads", threads, "--hash-seed", seed,
                               "--stats-json", stats)
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                    self.assertEqual(load_json(stats)["hash_seed"], int(seed))
                    outputs[(seed, threads)] = sorted(proc.stdout.decode().splitlines())
            first = next(iter(outputs.values()))
            self.assertGreater(len(first), 0)
            for key, lines in outputs.items():
                self.assertEqual(lines, first, key)
            # Without the flag every run draws its own seed.
            seeds = set()
            for _ in range(2):
                proc = run("-r", SAMPLE, "-q", "--stats-json", stats)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                seeds.add(load_json(stats)["hash_seed"])
            self.assertEqual(len(seeds), 2, "two runs drew the same random seed")

    def test_bad_hash_seed(self):
        for bad in ("x", "-1", "18446744073709551616"):
            proc = run("-r", SAMPLE, "--hash-seed", bad)
            self.assertEqual(proc.returncode, 2, (bad, proc.stderr))
            self.assertEqual(len(proc.stderr.decode().splitlines()), 1, proc.stderr)


class Ledger(unittest.TestCase):
    def check_ledger(self, name, st, records):
        """received = metered + filtered + malformed + unsupported (+ ring drops), from the fields."""
        malformed = {k: v for k, v in st["malformed"].items() if k != "total"}
        unsupported = {k: v for k, v in st["unsupported"].items() if k != "total"}
        self.assertEqual(sum(malformed.values()), st["malformed"]["total"], name)
        self.assertEqual(sum(unsupported.values()), st["unsupported"]["total"], name)
        self.assertEqual(sum(st["ring_dropped"]["per_ring"]), st["ring_dropped"]["total"], name)
        self.assertEqual(st["ring_dropped"]["total"], 0, name + ": an offline run never drops")
        self.assertEqual(st["received"], st["metered"] + st["filtered"] + sum(malformed.values()) +
                         sum(unsupported.values()) + st["ring_dropped"]["total"], name)
        self.assertTrue(st["conserved"], name)
        self.assertEqual(len(records), st["flows"]["records"], name)
        self.assertEqual(st["flows"]["records"], sum(st["flows"][r] for r in END_REASON_CODES), name)
        self.assertEqual(sum(r["packets"] + r["rev_packets"] for r in records), st["metered"], name)

    def test_every_shared_capture_balances(self):
        manifest = os.path.join(PCAPS, "manifest.tsv")
        if not os.path.exists(manifest):
            self.skipTest(shared_data.no_shared_data(PCAPS))
        with open(manifest) as f:
            header = f.readline().rstrip("\n").split("\t")
            rows = [dict(zip(header, l.rstrip("\n").split("\t"))) for l in f if l.strip()]
        # Every capture file is in the manifest, so none escapes this loop.
        self.assertEqual(sorted(r["file"] for r in rows), shared_captures())
        with tempfile.TemporaryDirectory() as d:
            for row in rows:
                name = row["file"]
                for threads in ("1", "4"):
                    with self.subTest(capture=name, threads=threads):
                        stats = os.path.join(d, "s.json")
                        proc = run("-r", os.path.join(PCAPS, name), "--json", "-q", "--threads", threads,
                                   "--stats-json", stats)
                        self.assertEqual(proc.returncode, 0, name + ": " + proc.stderr.decode())
                        st = load_json(stats)
                        self.assertEqual(st["received"], int(row["packets"]), name)
                        self.check_ledger(name, st, records_of(proc))
                        # Every shard ring has its counter, even when (offline) all are 0.
                        self.assertEqual(st["threads"], int(threads), name)
                        self.assertEqual(len(st["ring_dropped"]["per_ring"]), 0 if threads == "1" else int(threads))

    def test_filtered_packets_are_in_the_ledger(self):
        with tempfile.TemporaryDirectory() as d:
            stats = os.path.join(d, "s.json")
            proc = run("-r", SAMPLE, "--json", "-q", "--stats-json", stats, "udp")
            self.assertEqual(proc.returncode, 0, proc.stderr.decode())
            st = load_json(stats)
            records = records_of(proc)
            self.assertGreater(st["filtered"], 0)
            self.assertTrue(all(r["proto"] == 17 for r in records))
            self.check_ledger("sample.pcap udp", st, records)


class Records(unittest.TestCase):
    """The JSON output against docs/records.md, on every shared capture."""

    def documented_fields(self):
        """Field name -> IPFIX column of the "## Fields" table in docs/records.md."""
        fields = {}
        with open(RECORDS_MD) as f:
            text = f.read()
        table = text[text.index("## Fields"):]
        table = table[:table.index("\n#", 1)]
        for line in table.splitlines():
            # Cells split on unescaped pipes: "type << 8 \| code" is one cell.
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if len(cells) != 4 or not cells[0].startswith("`"):
                continue
            for name in re.findall(r"`([a-z_]+)`", cells[0]):
                fields[name] = cells[3]
        return fields

    def test_every_field_is_documented_with_an_ipfix_element(self):
        if not shared_captures():
            self.skipTest(shared_data.no_shared_data(PCAPS))
        documented = self.documented_fields()
        seen = set()
        for name in shared_captures():
            proc = run("-r", os.path.join(PCAPS, name), "--json", "-q")
            self.assertEqual(proc.returncode, 0, name)
            for r in records_of(proc):
                seen.update(r)
                with self.subTest(capture=name):
                    self.assertEqual(r["end_reason_code"], END_REASON_CODES[r["end_reason"]], r)
                    self.assertRegex(r["community_id"], COMMUNITY_ID)
                    self.assertEqual("icmp_type" in r, r["proto"] in (1, 58), r)
                    self.assertEqual("spi" in r, r["proto"] in (50, 51), r)
                    if r["proto"] in (1, 58):
                        self.assertEqual(r["dst_port"], r["icmp_type"] << 8 | r["icmp_code"], r)
                        self.assertEqual(r["src_port"], 0, r)
        # The captures exercise the optional fields too (ICMP, ESP/AH, tunnels).
        for optional in ("icmp_type", "icmp_code", "spi", "rev_spi"):
            self.assertIn(optional, seen)
        for field in sorted(seen):
            self.assertIn(field, documented, "JSON field %r is not in docs/records.md" % field)
            # Either an IANA element (name and number) or an explicit "no IANA element".
            self.assertTrue(re.search(r"\(\d+[,)]", documented[field]) or "no IANA element" in documented[field],
                            "%s: no IPFIX element named in docs/records.md" % field)
        for field in documented:
            self.assertIn(field, seen, "docs/records.md documents %r, which no record carries" % field)

    def test_flow_end_reasons_are_documented_with_their_codes(self):
        with open(RECORDS_MD) as f:
            text = f.read()
        for name, code in END_REASON_CODES.items():
            self.assertRegex(text, r"\| `%s` \| %d \|" % (name, code))


class ThreadCount(unittest.TestCase):
    """Offline records are the same set whatever --threads says."""

    def test_shared_captures_give_the_same_records_at_1_2_and_4_threads(self):
        if not shared_captures():
            self.skipTest(shared_data.no_shared_data(PCAPS))
        for name in shared_captures():
            path = os.path.join(PCAPS, name)
            one = run("-r", path, "--json", "-q", "--threads", "1")
            self.assertEqual(one.returncode, 0, name)
            for threads in ("2", "4"):
                with self.subTest(capture=name, threads=threads):
                    many = run("-r", path, "--json", "-q", "--threads", threads)
                    self.assertEqual(many.returncode, 0, name)
                    a, b = records_of(one), records_of(many)
                    key = lambda r: json.dumps(r, sort_keys=True)
                    self.assertEqual(sorted(map(key, a)), sorted(map(key, b)))


class GroundTruth(unittest.TestCase):
    def check(self, *gen_args):
        gen = os.path.join(SHARED, "tools", "gen_pcap.py")
        if not os.path.exists(gen):
            self.skipTest(shared_data.no_shared_data(gen))
        with tempfile.TemporaryDirectory() as d:
            pcap, truth_path = os.path.join(d, "g.pcap"), os.path.join(d, "g.json")
            subprocess.run(["/usr/bin/python3", gen, "-o", pcap, "--truth", truth_path, *gen_args],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            truth = load_json(truth_path)
            first = None
            for threads in ("1", "2", "4"):
                with self.subTest(threads=threads):
                    proc = run("-r", pcap, "--json", "-q", "--threads", threads)
                    self.assertEqual(proc.returncode, 0, proc.stderr.decode())
                    records = records_of(proc)
                    self.check_truth(records, truth)
                    lines = sorted(proc.stdout.decode().splitlines())
                    if first is None:
                        first = lines
                    else:
                        self.assertEqual(lines, first, "records differ from --threads 1")

    def check_truth(self, records, truth):
        self.assertEqual(len(records), truth["flows"])
        keys = {(r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"]) for r in records}
        self.assertEqual(len(keys), truth["flows"], "a flow was exported twice")
        # The generator's client sends first (and the SYN): it must be the initiator.
        self.assertEqual(sum(r["packets"] for r in records), truth["packets_c2s"])
        self.assertEqual(sum(r["rev_packets"] for r in records), truth["packets_s2c"])
        self.assertEqual(sum(r["bytes"] for r in records), truth["ip_bytes_c2s"])
        self.assertEqual(sum(r["rev_bytes"] for r in records), truth["ip_bytes_s2c"])
        self.assertEqual(sum(r["frame_bytes"] + r["rev_frame_bytes"] for r in records), truth["frame_bytes"])
        self.assertEqual(sum((r["packets"] > 0) + (r["rev_packets"] > 0) for r in records), truth["uniflows"])
        self.assertEqual(sum(1 for r in records if r["packets"] + r["rev_packets"] == 1),
                         truth["flows_single_packet"])
        self.assertEqual(sum(1 for r in records if r["ip_version"] == 6), truth["flows_v6"])
        self.assertEqual(sum(1 for r in records if r["ip_version"] == 4), truth["flows_v4"])
        self.assertEqual(sum(1 for r in records if r["proto"] == 6), truth["flows_tcp"])
        self.assertEqual(sum(1 for r in records if r["proto"] == 17), truth["flows_udp"])
        for field, pred in (("packets_v6", lambda r: r["ip_version"] == 6), ("packets_v4", lambda r: r["ip_version"] == 4),
                            ("packets_tcp", lambda r: r["proto"] == 6), ("packets_udp", lambda r: r["proto"] == 17)):
            self.assertEqual(sum(r["packets"] + r["rev_packets"] for r in records if pred(r)), truth[field], field)

    def test_uniform_mixed_families(self):
        self.check("--packets", "20000", "--flows", "1000", "--v6-share", "0.3")

    def test_zipf_imix_nanoseconds(self):
        self.check("--packets", "20000", "--flows", "3000", "--zipf", "1.1", "--size", "imix", "--ts", "ns",
                   "--v6-share", "0.5", "--proto-mix", "tcp:50,udp:50")

    def test_issue_sized_capture(self):
        # The size the pipeline issue asks for: 200k packets over 5000 flows.
        self.check("--packets", "200000", "--flows", "5000", "--v6-share", "0.3")


if __name__ == "__main__":
    SENSOR = sys.argv.pop(1)
    unittest.main(verbosity=2)
