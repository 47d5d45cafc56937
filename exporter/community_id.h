#pragma once
// community_id: the Community ID v1 of a flow record's 5-tuple
// (https://github.com/corelight/community-id-spec), the string Zeek and
// Suricata put in their logs, so records from all three can be joined.
//
//   std::string id = community_id(record);   // e.g. "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
//
// An export concern: it hashes with SHA-1 from libcrypto, which the engine
// does not need. Both directions of a flow give the same id.

#include <cstdint>
#include <string>

#include "pipeline/flow_record.h"

namespace flower {

// Community ID v1 of `record`'s 5-tuple with the given seed (0 in every
// record Flower writes).
std::string community_id(const flow_record& record, uint16_t seed = 0);

}  // namespace flower
