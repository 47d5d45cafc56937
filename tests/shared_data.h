#pragma once
// shared_data: where tests find the shared capture set that sits beside a
// full checkout (../shared: pcaps/, their tshark references, tools/).
//
//   const std::filesystem::path dir = shared_pcaps();
//   if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << no_shared_data(dir);
//
// FLOWER_SHARED_DIR overrides the place (scripts/test points it at an empty
// directory once, to prove that a lone clone passes). Every test that reads
// the set goes through here and skips, saying why, when it is absent;
// small captures a test always needs live in tests/data/ instead.

#include <cstdlib>
#include <filesystem>
#include <string>

namespace flower::test_data {

inline std::filesystem::path shared_dir() {
  if (const char* d = std::getenv("FLOWER_SHARED_DIR"); d != nullptr && *d != '\0') return d;
  return std::filesystem::path(FLOWER_SOURCE_DIR) / ".." / "shared";
}

inline std::filesystem::path shared_pcaps() { return shared_dir() / "pcaps"; }

// The skip reason for a missing part of the set.
inline std::string no_shared_data(const std::filesystem::path& missing) {
  return "no shared capture set at " + missing.string() + " (a lone clone has none; FLOWER_SHARED_DIR names another)";
}

// A file the tests ship themselves (tests/data/).
inline std::filesystem::path bundled(const std::string& name) {
  return std::filesystem::path(FLOWER_SOURCE_DIR) / "tests" / "data" / name;
}

}  // namespace flower::test_data
