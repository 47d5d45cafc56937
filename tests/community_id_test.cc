// Community ID v1 against the spec's published baseline values
// (corelight/community-id-spec baseline; the same vectors appear in Zeek's
// community-id test suite).

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

#include "exporter/community_id.h"

namespace flower {
namespace {

flow_record make(uint8_t proto, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                 uint16_t icmp_type_code = 0) {
  flow_record r;
  uint8_t buf[16];
  auto put = [&](std::array<uint8_t, 16>& a, const std::string& text) {
    if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
      r.key.set_v4(a, buf);
      r.key.ip_version = 4;
    } else {
      ASSERT_EQ(inet_pton(AF_INET6, text.c_str(), buf), 1);
      std::memcpy(a.data(), buf, 16);
      r.key.ip_version = 6;
    }
  };
  put(r.key.addr_a, src);
  put(r.key.addr_b, dst);
  r.key.port_a = sport;
  r.key.port_b = dport;
  r.key.proto = proto;
  r.icmp_type_code = icmp_type_code;
  return r;
}

struct vector_case {
  const char* name;
  flow_record record;
  uint16_t seed;
  const char* id;
};

class CommunityIdVectors : public ::testing::TestWithParam<vector_case> {};

TEST_P(CommunityIdVectors, MatchesTheSpec) {
  EXPECT_EQ(community_id(GetParam().record, GetParam().seed), GetParam().id);
}

const char* kV6a = "fe80:1:203:405:607:809:a0b:c0d";
const char* kV6b = "fe80:1011:1213:1415:1617:1819:1a1b:1c1d";

INSTANTIATE_TEST_SUITE_P(
    Baseline, CommunityIdVectors,
    ::testing::Values(
        vector_case{"tcp_http", make(6, "128.232.110.120", 34855, "66.35.250.204", 80), 0,
                    "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
        vector_case{"tcp_http_reverse", make(6, "66.35.250.204", 80, "128.232.110.120", 34855), 0,
                    "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
        vector_case{"tcp", make(6, "1.2.3.4", 1122, "5.6.7.8", 3344), 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
        vector_case{"tcp_reverse", make(6, "5.6.7.8", 3344, "1.2.3.4", 1122), 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
        vector_case{"tcp_seed1", make(6, "1.2.3.4", 1122, "5.6.7.8", 3344), 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
        vector_case{"udp", make(17, "1.2.3.4", 1122, "5.6.7.8", 3344), 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
        vector_case{"udp_seed1", make(17, "1.2.3.4", 1122, "5.6.7.8", 3344), 1, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
        vector_case{"icmp_echo", make(1, "1.2.3.4", 0, "5.6.7.8", 0, 0x0800), 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
        vector_case{"icmp_echo_reply", make(1, "5.6.7.8", 0, "1.2.3.4", 0, 0x0000), 0,
                    "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="},
        vector_case{"icmp_seed1", make(1, "1.2.3.4", 0, "5.6.7.8", 0, 0x0800), 1, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="},
        vector_case{"icmp6_echo", make(58, kV6a, 0, kV6b, 0, 128 << 8), 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="},
        vector_case{"icmp6_echo_reply", make(58, kV6b, 0, kV6a, 0, 129 << 8), 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="},
        vector_case{"icmp6_seed1", make(58, kV6a, 0, kV6b, 0, 128 << 8), 1, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="},
        vector_case{"rsvp_no_ports", make(46, "1.2.3.4", 0, "5.6.7.8", 0), 0, "1:ikv3kmf89luf73WPz1jOs49S768="}),
    [](const ::testing::TestParamInfo<vector_case>& p) { return std::string(p.param.name); });

TEST(CommunityId, OneWayIcmpKeepsItsDirection) {
  // Destination unreachable (3/1) has no counterpart: the two directions of
  // the address pair are different ids.
  const auto there = community_id(make(1, "1.2.3.4", 0, "5.6.7.8", 0, 0x0301));
  const auto back = community_id(make(1, "5.6.7.8", 0, "1.2.3.4", 0, 0x0301));
  EXPECT_NE(there, back);
  EXPECT_EQ(there.rfind("1:", 0), 0u);
  EXPECT_EQ(there.size(), 30u);  // "1:" + base64 of 20 bytes
}

}  // namespace
}  // namespace flower
