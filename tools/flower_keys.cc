// flower-keys: makes a CURVE key pair for the ZeroMQ feed (docs/feed.md,
// "Security"): PREFIX.pub (the public key, for the peer) and PREFIX.secret
// (the key pair, mode 0600). Never overwrites a file.
//
// Exit status: 0; 1 when the files cannot be written or libzmq has no CURVE;
// 2 on a usage error.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "exporter/feed/feed_curve.h"

int main(int argc, char** argv) {
  using namespace flower;
  std::string prefix;
  CLI::App app{
      "flower-keys: make a CURVE key pair for the flower feed (docs/feed.md).\n"
      "Writes PREFIX.pub (give it to the peer; concatenate clients' .pub files into an\n"
      "allowed-keys file) and PREFIX.secret (this side's key pair, mode 0600).",
      "flower-keys"};
  app.add_option("prefix", prefix, "Path prefix of the two files")->type_name("PREFIX")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "flower-keys: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    const curve_key_pair keys = make_curve_key_pair();
    write_key_files(prefix, keys);
    std::printf("%s.pub %s.secret public-key %s\n", prefix.c_str(), prefix.c_str(), keys.public_z85.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flower-keys: %s\n", e.what());
    return 1;
  }
  return 0;
}
