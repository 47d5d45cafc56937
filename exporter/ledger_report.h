#pragma once
// ledger_report: the packet ledger (pipeline/drop_ledger.h) as JSON and as
// human text. The JSON object is the one --stats-json writes and
// docs/records.md ("The packet ledger") documents field by field;
// flower-bench embeds the same object.
//
//   nlohmann::ordered_json j = ledger;         // ADL: to_json below (keys in this order)
//   j["threads"] = 4;                          // callers add their own members
//   std::fputs(to_text(ledger).c_str(), stderr);

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "pipeline/drop_ledger.h"

namespace flower {

// {"source_dropped":..,"source_undrained":..,"received":..,"filtered":..,
//  "malformed":{<reason>:..,"total":..},"unsupported":{..},
//  "ring_dropped":{"total":..,"per_ring":[..]},"metered":..,"fragments":{..},
//  "time_jumps":..,"flows":{..},"output":{..},"conserved":bool}
void to_json(nlohmann::ordered_json& out, const drop_ledger& ledger);

// A few lines for stderr: "packets: R received, M metered, ..." first, then
// only the stages that lost or set aside something, and a last line when the
// identity does not hold.
std::string to_text(const drop_ledger& ledger);

}  // namespace flower
