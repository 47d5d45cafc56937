// Reading a capture from the page cache: capture_file (mmap, zero copy,
// batches of 256) against libpcap's pcap_next_ex on the same file.
// Steady state: the file is written once, each iteration opens and reads it
// whole. Items are packets; the label says the frame size and format.

#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "capture/capture_file.h"

namespace {

// About 40 MB per file: 500k small frames, fewer large ones.
size_t packets_for(uint32_t frame_bytes) { return std::min<size_t>(500000, (40u << 20) / (frame_bytes + 32)); }

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<uint8_t> make_pcap(uint32_t frame_bytes) {
  const size_t packets_per_file = packets_for(frame_bytes);
  std::vector<uint8_t> b;
  b.reserve(24 + packets_per_file * (16 + frame_bytes));
  put32(b, 0xa1b2c3d4);
  put32(b, 0x00040002);
  put32(b, 0);
  put32(b, 0);
  put32(b, 262144);
  put32(b, 1);
  for (size_t i = 0; i < packets_per_file; ++i) {
    put32(b, 1700000000 + static_cast<uint32_t>(i / 100000));
    put32(b, static_cast<uint32_t>(i % 100000) * 10);
    put32(b, frame_bytes);
    put32(b, frame_bytes);
    b.insert(b.end(), frame_bytes, static_cast<uint8_t>(i));
  }
  return b;
}

std::vector<uint8_t> make_pcapng(uint32_t frame_bytes) {
  const size_t packets_per_file = packets_for(frame_bytes);
  std::vector<uint8_t> b;
  const uint32_t padded = (frame_bytes + 3) & ~3u;
  b.reserve(48 + packets_per_file * (32 + padded));
  for (uint32_t v : {0x0a0d0d0au, 28u, 0x1a2b3c4du, 1u, 0xffffffffu, 0xffffffffu, 28u}) put32(b, v);
  for (uint32_t v : {1u, 20u, 1u, 262144u, 20u}) put32(b, v);
  for (size_t i = 0; i < packets_per_file; ++i) {
    const uint64_t ts_us = 1700000000000000ull + i * 10;
    put32(b, 6);
    put32(b, 32 + padded);
    put32(b, 0);
    put32(b, static_cast<uint32_t>(ts_us >> 32));
    put32(b, static_cast<uint32_t>(ts_us));
    put32(b, frame_bytes);
    put32(b, frame_bytes);
    b.insert(b.end(), padded, static_cast<uint8_t>(i));
    put32(b, 32 + padded);
  }
  return b;
}

// One file per (format, size), written on first use and removed at exit.
const std::string& bench_file(bool pcapng, uint32_t frame_bytes) {
  struct files {
    std::map<std::pair<bool, uint32_t>, std::string> paths;
    ~files() {
      for (auto& [k, p] : paths) std::remove(p.c_str());
    }
  };
  static files all;
  auto& path = all.paths[{pcapng, frame_bytes}];
  if (path.empty()) {
    path = (std::filesystem::temp_directory_path() /
            ("flower-bench-" + std::to_string(::getpid()) + "-" + std::to_string(frame_bytes) +
             (pcapng ? ".pcapng" : ".pcap")))
               .string();
    const auto bytes = pcapng ? make_pcapng(frame_bytes) : make_pcap(frame_bytes);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                 static_cast<std::streamsize>(bytes.size()));
  }
  return path;
}

void read_with_capture_file(benchmark::State& state, bool pcapng) {
  const auto frame_bytes = static_cast<uint32_t>(state.range(0));
  const std::string& path = bench_file(pcapng, frame_bytes);
  std::array<flower::packet_view, 256> batch;
  uint64_t packets = 0;
  for (auto _ : state) {
    auto file = flower::capture_file::open(path);
    uint64_t bytes = 0, ts = 0;
    while (size_t n = file.next_batch(batch)) {
      for (size_t i = 0; i < n; ++i) {
        bytes += batch[i].caplen;
        ts ^= batch[i].ts_ns;
      }
      packets += n;
    }
    benchmark::DoNotOptimize(bytes);
    benchmark::DoNotOptimize(ts);
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.SetLabel(std::string(pcapng ? "pcapng" : "pcap") + ", " + std::to_string(frame_bytes) + "-byte frames");
}

void BM_capture_file_pcap(benchmark::State& state) { read_with_capture_file(state, false); }
void BM_capture_file_pcapng(benchmark::State& state) { read_with_capture_file(state, true); }

void read_with_libpcap(benchmark::State& state, bool pcapng) {
  const auto frame_bytes = static_cast<uint32_t>(state.range(0));
  const std::string& path = bench_file(pcapng, frame_bytes);
  uint64_t packets = 0;
  char err[PCAP_ERRBUF_SIZE];
  for (auto _ : state) {
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    if (!p) {
      state.SkipWithError(err);
      return;
    }
    pcap_pkthdr* hdr;
    const u_char* data;
    uint64_t bytes = 0, ts = 0;
    while (pcap_next_ex(p, &hdr, &data) == 1) {
      bytes += hdr->caplen;
      ts ^= static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000u + static_cast<uint64_t>(hdr->ts.tv_usec) * 1000u;
      ++packets;
    }
    pcap_close(p);
    benchmark::DoNotOptimize(bytes);
    benchmark::DoNotOptimize(ts);
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.SetLabel(std::string(pcapng ? "pcapng" : "pcap") + ", " + std::to_string(frame_bytes) + "-byte frames");
}

void BM_libpcap_pcap(benchmark::State& state) { read_with_libpcap(state, false); }
void BM_libpcap_pcapng(benchmark::State& state) { read_with_libpcap(state, true); }

BENCHMARK(BM_capture_file_pcap)->Arg(64)->Arg(1500)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_libpcap_pcap)->Arg(64)->Arg(1500)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_capture_file_pcapng)->Arg(64)->Arg(1500)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_libpcap_pcapng)->Arg(64)->Arg(1500)->Unit(benchmark::kMillisecond);

}  // namespace
