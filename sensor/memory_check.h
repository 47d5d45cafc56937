#pragma once
// memory_check: refuse, at start and in one line, a --max-flows the machine
// cannot hold, instead of being killed by the kernel once the tables fill.
//
//   check_engine_memory(options.engine, shards, mem_available_bytes());
//   // throws std::runtime_error: "--max-flows 1000000000 needs 88.1 GiB
//   // (flow tables and fragment caches); 7.6 GiB is available (MemAvailable)"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/flow_engine.h"

namespace flower {

// What the engine maps for its flow tables and fragment caches with
// `shards` shards (each has max_flows / shards flows and its own cache).
uint64_t engine_memory_bytes(const engine_config& config, unsigned shards) noexcept;

// MemAvailable from a meminfo file, in bytes; empty if it cannot be read.
std::optional<uint64_t> mem_available_bytes(const std::string& meminfo_path = "/proc/meminfo");

// Throws std::runtime_error with the one line above when the engine needs
// more than `available`; does nothing when `available` is unknown.
void check_engine_memory(const engine_config& config, unsigned shards, std::optional<uint64_t> available);

}  // namespace flower
