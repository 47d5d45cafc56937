#include "sensor/ip_protocols.h"

#include <utility>

namespace flower {

bool parse_ip_protocol_list(const std::string& list, std::vector<uint8_t>& protocols, std::string& error) {
  static constexpr std::pair<const char*, uint8_t> kNames[] = {
      {"icmp", 1}, {"igmp", 2}, {"ipip", 4}, {"tcp", 6}, {"udp", 17}, {"ipv6", 41}, {"gre", 47},
      {"esp", 50}, {"ah", 51}, {"icmp6", 58}, {"ipv6-icmp", 58}, {"ospf", 89}, {"sctp", 132}, {"udplite", 136}};
  protocols.clear();
  if (list.empty()) return true;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string word = list.substr(start, end - start);
    start = end + 1;
    if (word.empty()) {
      error = "empty protocol in '" + list + "'";
      return false;
    }
    int value = -1;
    for (const auto& [name, number] : kNames)
      if (word == name) value = number;
    if (value < 0 && word.find_first_not_of("0123456789") == std::string::npos && word.size() <= 3)
      value = std::stoi(word);
    if (value < 0 || value > 255) {
      error = "unknown IP protocol '" + word + "' (name or 0..255)";
      return false;
    }
    protocols.push_back(static_cast<uint8_t>(value));
  }
  return true;
}

}  // namespace flower
