// The start-up memory check behind --max-flows: the engine's need from the
// table's own sizing, MemAvailable from a meminfo file, and the refusal line.
#include "sensor/memory_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include "pipeline/flow_table.h"
#include "pipeline/fragment_cache.h"

namespace flower {
namespace {

std::string write_meminfo(const std::string& text) {
  char path[] = "/tmp/flower-meminfo-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  std::ofstream(path) << text;
  ::close(fd);
  return path;
}

TEST(MemAvailable, ReadsTheKernelsKilobytes) {
  const std::string p = write_meminfo(
      "MemTotal:       16310112 kB\nMemFree:         1234567 kB\nMemAvailable:    8000000 kB\nBuffers: 1 kB\n");
  EXPECT_EQ(mem_available_bytes(p), std::optional<uint64_t>(8'000'000ull * 1024));
  std::remove(p.c_str());
}

TEST(MemAvailable, MissingLineOrFileIsUnknown) {
  const std::string p = write_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\n");
  EXPECT_EQ(mem_available_bytes(p), std::nullopt);
  std::remove(p.c_str());
  EXPECT_EQ(mem_available_bytes("/nonexistent/meminfo"), std::nullopt);
}

TEST(MemAvailable, ThisMachineReportsIt) { EXPECT_TRUE(mem_available_bytes().has_value()); }

TEST(EngineMemory, TablesAndFragmentCachesPerShard) {
  engine_config c;
  c.table.max_flows = 1'000'000;
  c.table.huge_pages = false;
  EXPECT_EQ(engine_memory_bytes(c, 1),
            flow_table::memory_bytes_for(1'000'000, false) + fragment_cache::memory_bytes_for(c.fragment_slots));
  EXPECT_EQ(engine_memory_bytes(c, 4),
            4 * (flow_table::memory_bytes_for(250'000, false) + fragment_cache::memory_bytes_for(c.fragment_slots)));
  EXPECT_EQ(engine_memory_bytes(c, 0), engine_memory_bytes(c, 1));
  EXPECT_GT(engine_memory_bytes(c, 1), 1'000'000u * 32);  // at least a key and counters per flow
}

TEST(EngineMemory, RefusesWithOneLineSayingNeedAndAvailable) {
  engine_config c;
  c.table.max_flows = 1u << 30;
  try {
    check_engine_memory(c, 1, uint64_t{2} << 30);
    FAIL() << "2 GiB cannot hold 2^30 flows";
  } catch (const std::runtime_error& e) {
    const std::string line = e.what();
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.rfind("--max-flows 1073741824 needs ", 0), 0u) << line;
    EXPECT_NE(line.find(" GiB (flow tables and fragment caches); 2.0 GiB is available (MemAvailable"), std::string::npos)
        << line;
  }
}

TEST(EngineMemory, FitsOrUnknownPasses) {
  engine_config c;
  c.table.max_flows = 1000;
  EXPECT_NO_THROW(check_engine_memory(c, 1, uint64_t{1} << 30));
  c.table.max_flows = 1u << 30;
  EXPECT_NO_THROW(check_engine_memory(c, 1, std::nullopt));
  EXPECT_NO_THROW(check_engine_memory(c, 1, engine_memory_bytes(c, 1)));  // exactly enough
}

}  // namespace
}  // namespace flower
