// --xdp-proto LIST: names and numbers, and every way a list can be wrong.
#include "sensor/ip_protocols.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace flower {
namespace {

std::vector<uint8_t> parsed(const std::string& list) {
  std::vector<uint8_t> p;
  std::string error;
  EXPECT_TRUE(parse_ip_protocol_list(list, p, error)) << list << ": " << error;
  return p;
}

std::string error_of(const std::string& list) {
  std::vector<uint8_t> p;
  std::string error;
  EXPECT_FALSE(parse_ip_protocol_list(list, p, error)) << list;
  return error;
}

TEST(IpProtocolList, NamesAndNumbersInOrder) {
  EXPECT_EQ(parsed("tcp,udp"), (std::vector<uint8_t>{6, 17}));
  EXPECT_EQ(parsed("17,6,132"), (std::vector<uint8_t>{17, 6, 132}));
  EXPECT_EQ(parsed("icmp,icmp6,ipv6-icmp,gre,esp,ah,sctp,udplite,ospf,igmp,ipip,ipv6"),
            (std::vector<uint8_t>{1, 58, 58, 47, 50, 51, 132, 136, 89, 2, 4, 41}));
  EXPECT_EQ(parsed("0,255"), (std::vector<uint8_t>{0, 255}));
}

TEST(IpProtocolList, EmptyListIsNoFilter) { EXPECT_TRUE(parsed("").empty()); }

TEST(IpProtocolList, PreviousContentsAreReplaced) {
  std::vector<uint8_t> p{99, 98};
  std::string error;
  ASSERT_TRUE(parse_ip_protocol_list("udp", p, error));
  EXPECT_EQ(p, std::vector<uint8_t>{17});
}

TEST(IpProtocolList, BadItemsAreNamed) {
  EXPECT_NE(error_of("tcp,,udp").find("empty protocol in 'tcp,,udp'"), std::string::npos);
  EXPECT_NE(error_of("tcp,").find("empty protocol"), std::string::npos);
  EXPECT_NE(error_of(",tcp").find("empty protocol"), std::string::npos);
  EXPECT_NE(error_of("tcp,banana").find("unknown IP protocol 'banana'"), std::string::npos);
  EXPECT_NE(error_of("256").find("'256'"), std::string::npos);
  EXPECT_NE(error_of("1000").find("'1000'"), std::string::npos);
  EXPECT_NE(error_of("-1").find("'-1'"), std::string::npos);
  EXPECT_NE(error_of("TCP").find("'TCP'"), std::string::npos);  // names are lower case, as in /etc/protocols
  EXPECT_NE(error_of(" tcp").find("' tcp'"), std::string::npos);
}

}  // namespace
}  // namespace flower
