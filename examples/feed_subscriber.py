#!/usr/bin/env python3
"""Print the flow records of a flower-sensor feed (docs/feed.md).

A plain subscriber with Debian's python3-zmq and python3-protobuf. The
flower.v1 module is generated from the repository's .proto by the build
(build/python/flower/v1/feed_pb2.py), or by hand:

    protoc -Iexporter/proto --python_out=OUT exporter/proto/flower/v1/feed.proto

Usage:

    PYTHONPATH=build/python python3 examples/feed_subscriber.py \\
        [--connect tcp://127.0.0.1:5556]... [--bind ENDPOINT] [--json] [--count N] [--timeout SEC]

Each record is printed as one JSON object (--json: the fields of
flower-sensor --json plus flow_id) or one readable line. Either encoding
of the feed is understood: a JSON payload starts with '{', a protobuf one
with its envelope (byte 0x0a).
"""

import argparse
import ipaddress
import json
import sys
import time

import zmq

from flower.v1 import feed_pb2


def enum_name(enum, value, prefix):
    return enum.Name(value)[len(prefix):].lower()


def record_from_protobuf(r):
    """A FlowRecord as the dict flower-sensor --json prints, plus flow_id."""
    d = {
        "proto": r.proto,
        "ip_version": r.ip_version,
        "src_addr": str(ipaddress.ip_address(r.src_addr)),
        "dst_addr": str(ipaddress.ip_address(r.dst_addr)),
        "src_port": r.src_port,
        "dst_port": r.dst_port,
        "vlan": r.vlan,
        "packets": r.packets,
        "bytes": r.bytes,
        "frame_bytes": r.frame_bytes,
        "rev_packets": r.rev_packets,
        "rev_bytes": r.rev_bytes,
        "rev_frame_bytes": r.rev_frame_bytes,
        "tcp_flags": r.tcp_flags,
        "rev_tcp_flags": r.rev_tcp_flags,
        "first_ns": r.first_ns,
        "last_ns": r.last_ns,
        "end_reason": enum_name(feed_pb2.EndReason, r.end_reason, "END_REASON_"),
        "end_reason_code": r.end_reason,
    }
    if r.HasField("icmp_type"):
        d["icmp_type"] = r.icmp_type
        d["icmp_code"] = r.icmp_code
    if r.HasField("spi"):
        d["spi"] = r.spi
        d["rev_spi"] = r.rev_spi
    d["tunnel"] = enum_name(feed_pb2.Tunnel, r.tunnel, "TUNNEL_")
    d["community_id"] = r.community_id
    d["flow_id"] = r.flow_id
    return d


def decode(payload):
    """(envelope dict, list of record dicts or None, other body or None)."""
    if payload[:1] == b"{":
        message = json.loads(payload)
        envelope = message.pop("envelope")
        flow = message.get("flow")
        return envelope, (flow["records"] if flow is not None else None), message
    message = feed_pb2.FeedMessage()
    message.ParseFromString(payload)
    e = message.envelope
    envelope = {"sensor_id": e.sensor_id, "run_id": e.run_id, "topic": e.topic, "seq": e.seq,
                "record_offset": e.record_offset}
    if message.WhichOneof("payload") == "flow":
        return envelope, [record_from_protobuf(r) for r in message.flow.records], None
    return envelope, None, message


def readable(r):
    return "{:<4} {}:{} -> {}:{}  vlan {}  pkts {}/{}  bytes {}/{}  {}".format(
        r["proto"], r["src_addr"], r["src_port"], r["dst_addr"], r["dst_port"], r["vlan"],
        r["packets"], r["rev_packets"], r["bytes"], r["rev_bytes"], r["end_reason"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", action="append", default=[], metavar="ENDPOINT")
    parser.add_argument("--bind", action="append", default=[], metavar="ENDPOINT")
    parser.add_argument("--json", action="store_true", help="one JSON object per record")
    parser.add_argument("--count", type=int, default=0, help="stop after N records")
    parser.add_argument("--timeout", type=float, default=0, help="stop after SEC seconds")
    args = parser.parse_args()
    if not args.connect and not args.bind:
        args.connect = ["tcp://127.0.0.1:5556"]

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, b"flow")
    for endpoint in args.bind:
        socket.bind(endpoint)
    for endpoint in args.connect:
        socket.connect(endpoint)

    expected = {}  # (sensor_id, topic) -> (run_id, next seq)
    received = lost = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not args.count or received < args.count:
            wait_ms = 100 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if deadline is not None and wait_ms == 0:
                break
            if not socket.poll(min(wait_ms, 100)):
                continue
            frames = socket.recv_multipart()
            envelope, records, _ = decode(frames[1])
            key = (envelope["sensor_id"], envelope["topic"])
            run, seq = expected.get(key, (envelope["run_id"], envelope["seq"]))
            if run == envelope["run_id"] and envelope["seq"] > seq:
                lost += envelope["seq"] - seq
                print("gap in {}/{}: {} messages lost".format(*key, envelope["seq"] - seq), file=sys.stderr)
            expected[key] = (envelope["run_id"], envelope["seq"] + 1)
            for r in records or []:
                print(json.dumps(r, separators=(",", ":")) if args.json else readable(r))
            received += len(records or [])
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    print("received {} records, lost {} messages".format(received, lost), file=sys.stderr)
    return 0 if not args.count or received >= args.count else 2


if __name__ == "__main__":
    sys.exit(main())
