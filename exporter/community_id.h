#pragma once
// community_id: the Community ID v1 of a flow record's 5-tuple
// (https://github.com/corelight/community-id-spec), the string Zeek and
// Suricata put in their logs, so records from all three can be joined.
//
//   std::string id = community_id(record);   // e.g. "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
//   community_id_text t = community_id_of(record);  // the same, no allocation
//
// An export concern: it hashes with SHA-1 from libcrypto, which the engine
// does not need. Both directions of a flow give the same id.

#include <cstdint>
#include <string>
#include <string_view>

#include "pipeline/flow_record.h"

namespace flower {

// "1:" and the base64 of a SHA-1 digest: 30 characters.
struct community_id_text {
  char data[32];
  uint8_t size = 0;  // 0: libcrypto failed
  std::string_view view() const noexcept { return {data, size}; }
};

// Community ID v1 of `record`'s 5-tuple with the given seed (0 in every
// record Flower writes). The writers call it per record, so it allocates
// nothing.
community_id_text community_id_of(const flow_record& record, uint16_t seed = 0) noexcept;
inline std::string community_id(const flow_record& record, uint16_t seed = 0) {
  return std::string(community_id_of(record, seed).view());
}

}  // namespace flower
