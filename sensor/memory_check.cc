#include "sensor/memory_check.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "pipeline/flow_table.h"
#include "pipeline/fragment_cache.h"

namespace flower {
namespace {

std::string gib(uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
  return s;
}

}  // namespace

uint64_t engine_memory_bytes(const engine_config& config, unsigned shards) noexcept {
  shards = std::max(1u, shards);
  const uint32_t per_shard = std::max<uint32_t>(1, config.table.max_flows / shards);
  return uint64_t{shards} * (flow_table::memory_bytes_for(per_shard, config.table.huge_pages) +
                             fragment_cache::memory_bytes_for(config.fragment_slots));
}

std::optional<uint64_t> mem_available_bytes(const std::string& meminfo_path) {
  std::ifstream f(meminfo_path);
  std::string key, unit;
  uint64_t value = 0;
  while (f >> key >> value) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return value * 1024;  // the kernel reports kB (KiB)
  }
  return std::nullopt;
}

void check_engine_memory(const engine_config& config, unsigned shards, std::optional<uint64_t> available) {
  if (!available) return;
  const uint64_t need = engine_memory_bytes(config, shards);
  if (need <= *available) return;
  throw std::runtime_error("--max-flows " + std::to_string(config.table.max_flows) + " needs " + gib(need) +
                           " (flow tables and fragment caches); " + gib(*available) +
                           " is available (MemAvailable in /proc/meminfo)");
}

}  // namespace flower
