// Writes the checked-in fuzz seeds (tests/fuzz_seeds/README.md): the hostile
// frames of tests/hostile_mix.h in the input formats of fuzz_decode and
// fuzz_engine. Header-only, so it builds without the project:
//
//   c++ -std=c++20 -I. tests/fuzz_seeds/make_seeds.cc -o /tmp/make_seeds && /tmp/make_seeds tests/fuzz_seeds

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tests/hostile_mix.h"

namespace {

using namespace flower::test;

constexpr const char* kNames[] = {"ordinary",        "first_fragment", "orphan_fragment", "v6_ext_at_limit",
                                  "v6_ext_beyond",   "tunnel_nest",    "zero_length",     "truncated"};

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// fuzz_engine: [link selector][time step][length u16 LE][frame]; step 255
// is a forged far-future stamp.
void append_engine(std::vector<uint8_t>& out, const frame& f, uint8_t step) {
  out.push_back(0);  // Ethernet
  out.push_back(step);
  out.push_back(static_cast<uint8_t>(f.bytes.size()));
  out.push_back(static_cast<uint8_t>(f.bytes.size() >> 8));
  out.insert(out.end(), f.bytes.begin(), f.bytes.end());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "tests/fuzz_seeds";
  for (int k = 0; k < static_cast<int>(hostile_kind::count); ++k) {
    for (uint32_t n : {0u, 1u}) {
      const frame f = hostile_frame(static_cast<hostile_kind>(k), n);
      std::vector<uint8_t> decode = {0, 0};  // Ethernet, tunnels on
      decode.insert(decode.end(), f.bytes.begin(), f.bytes.end());
      write(dir + "/decode/" + kNames[k] + "-" + std::to_string(n), decode);
    }
  }
  // Engine: the mix itself; a first fragment, its orphaned cousins and a
  // flood against the 16-slot cache; a forged far-future stamp between
  // ordinary packets.
  std::vector<uint8_t> mix;
  for (uint32_t i = 0; i < 45; ++i) append_engine(mix, hostile_frame(static_cast<hostile_kind>(i % 8), i), 1);
  write(dir + "/engine/hostile-mix", mix);
  std::vector<uint8_t> flood;
  for (uint32_t i = 0; i < 40; ++i)
    append_engine(flood, hostile_frame(i % 3 == 2 ? hostile_kind::orphan_fragment : hostile_kind::first_fragment, i), 0);
  write(dir + "/engine/fragment-flood", flood);
  std::vector<uint8_t> jump;
  for (uint32_t i = 0; i < 12; ++i) append_engine(jump, hostile_frame(hostile_kind::ordinary, i), i == 6 ? 255 : 8);
  write(dir + "/engine/time-jump", jump);
  return 0;
}
