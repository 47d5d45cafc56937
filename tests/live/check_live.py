#!/usr/bin/python3
"""Asserts flower-sensor's --json records and --stats-json counters after
flower-send's "basic" plan (tools/flower_send.cc) was captured live.

usage: check_live.py RECORDS STATS --front-end xdp|pcap [--xdp-mode native|generic]
                     [--ip-version 4|6] [--protos N,N...] [--queues N] [--threads N]
                     [--repeat N]

--repeat N: the plan was sent N times (same ports): every count is N times
the plan's, still one record per flow.

--ip-version / --protos: the sensor ran with the XDP pre-filter of the same
name; only the plan's flows that pass it may be metered, and every frame of
the others must be counted as prefiltered (XDP_PASS) by the program.
"""
import argparse
import json
import sys

# The plan, as the initiator -> responder records the sensor must export.
# bytes are IP octets; frames carry 14 more (Ethernet, no padding on veth).
EXPECTED = {
    # (proto, src, sport, dst, dport): (packets, bytes, rev_packets, rev_bytes)
    (17, "10.77.0.2", 40001, "10.77.0.1", 53): (5, 5 * 60, 3, 3 * 128),
    (17, "10.77.0.2", 40002, "10.77.0.1", 53): (7, 7 * 38, 0, 0),
    (6, "10.77.0.2", 40003, "10.77.0.1", 80): (6, 2 * 40 + 4 * 240, 3, 40 + 2 * 1040),
    (17, "fd00:77::2", 40004, "fd00:77::1", 53): (4, 4 * 96, 2, 2 * 112),
}
PLAN_FRAMES = 30


def frames_of(want):
    return want[0] + want[2]


assert sum(frames_of(w) for w in EXPECTED.values()) == PLAN_FRAMES

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("stats")
    ap.add_argument("--front-end", required=True, choices=["xdp", "pcap"])
    ap.add_argument("--xdp-mode", choices=["native", "generic"])
    ap.add_argument("--ip-version", type=int, choices=[4, 6])
    ap.add_argument("--protos", help="comma-separated IP protocol numbers")
    ap.add_argument("--queues", type=int, default=1, help="AF_XDP sockets expected (their rx_packets are summed)")
    ap.add_argument("--threads", type=int, help="metering threads the sensor must report")
    ap.add_argument("--repeat", type=int, default=1, help="the plan was sent this many times")
    ap.add_argument("--timestamps", choices=["xdp-metadata", "batch-clock"],
                    help="how XDP packets must have been timed (xdp-metadata: every frame carried flower_xdp_meta)")
    args = ap.parse_args()

    global PLAN_FRAMES
    PLAN_FRAMES *= args.repeat
    protos = {int(p) for p in args.protos.split(",")} if args.protos else None
    expected = {
        key: tuple(args.repeat * v for v in want)
        for key, want in EXPECTED.items()
        if (protos is None or key[0] in protos)
        and (args.ip_version is None or (":" in key[1]) == (args.ip_version == 6))
    }
    kept = sum(frames_of(w) for w in expected.values())
    prefiltered = PLAN_FRAMES - kept
    check(not (protos or args.ip_version) or 0 < kept < PLAN_FRAMES, "pre-filter case must keep some, not all")

    with open(args.records) as f:
        records = [json.loads(line) for line in f if line.strip()]
    got = {}
    for r in records:
        key = (r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"])
        check(key not in got, f"duplicate record for {key}")
        got[key] = (r["packets"], r["bytes"], r["rev_packets"], r["rev_bytes"])
        check(r["frame_bytes"] == r["bytes"] + 14 * r["packets"], f"{key}: frame_bytes {r['frame_bytes']}")
        check(r["end_reason"] == "shutdown", f"{key}: end_reason {r['end_reason']}")
    for key, want in expected.items():
        check(got.get(key) == want, f"record {key}: got {got.get(key)}, want {want}")
    for key in got.keys() - expected.keys():
        failures.append(f"unexpected record {key}: {got[key]}")

    with open(args.stats) as f:
        stats = json.load(f)
    check(stats["received"] == kept, f"received {stats['received']} != {kept}")
    check(stats["metered"] == kept, f"metered {stats['metered']} != {kept}")
    check(stats["conserved"] is True, "packet ledger not conserved")
    live = stats["live"]
    check(live["front_end"] == args.front_end, f"front end {live['front_end']} != {args.front_end}")
    if args.front_end == "xdp":
        if args.xdp_mode:
            check(live["xdp_mode"] == args.xdp_mode, f"xdp mode {live['xdp_mode']} != {args.xdp_mode}")
        prog = live["program"]
        check(prog["seen"] == PLAN_FRAMES, f"program seen {prog['seen']}")
        check(prog["redirected"] == kept, f"program redirected {prog['redirected']} != {kept}")
        check(prog["prefiltered"] == prefiltered, f"program prefiltered {prog['prefiltered']} != {prefiltered}")
        check(prog["passed"] == prefiltered and prog["dropped"] == 0, f"program passed/dropped {prog}")
        check(prog["no_socket"] == 0 and prog["sampled_out"] == 0, f"program no_socket/sampled_out {prog}")
        check(len(live["queues"]) == args.queues, f"queues {live['queues']}")
        rx = sum(q["rx_packets"] for q in live["queues"])
        check(rx == kept, f"queue rx_packets sum {rx} != {kept}")
        for q in live["queues"]:
            check(q["rx_dropped"] == 0 and q["rx_ring_full"] == 0, f"queue drops {q}")
            check(q["rx_invalid_descs"] == 0 and q["fill_ring_empty_descs"] == 0, f"queue drops {q}")
            check(q["zero_copy"] is False and q["bind"] == "copy", "veth cannot do zero-copy")
            check(q["xdp_mode"] == live["xdp_mode"], f"queue mode {q['xdp_mode']} != {live['xdp_mode']}")
            if args.timestamps == "xdp-metadata":
                # veth has no hardware clock: the driver answers 0, so every
                # frame is stamped but timed by the batch clock.
                check(q["metadata_frames"] == q["rx_packets"], f"frames without metadata {q}")
                check(q["hw_timestamps"] + q["hw_timestamps_unsynced"] <= q["metadata_frames"], f"timestamps {q}")
            elif args.timestamps == "batch-clock":
                check(q["metadata_frames"] == 0 and q["hw_timestamps"] == 0, f"metadata without flower_xdp_hwts {q}")
        if args.timestamps:
            check(live["timestamps"] == args.timestamps, f"timestamps {live['timestamps']} != {args.timestamps}")
        check(stats["source_dropped"] == 0, f"source_dropped {stats['source_dropped']}")
    else:
        p = live["pcap"]
        check(p["ps_recv"] >= PLAN_FRAMES, f"pcap ps_recv {p['ps_recv']}")
        check(p["ps_drop"] == 0, f"pcap ps_drop {p['ps_drop']}")
    if args.threads is not None:
        check(stats.get("threads") == args.threads, f"threads {stats.get('threads')} != {args.threads}")

    if failures:
        for f in failures:
            print("FAIL:", f)
        return 1
    print(f"ok: {len(records)} records, {kept} of {PLAN_FRAMES} frames metered, {prefiltered} prefiltered, "
          f"front end {args.front_end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
