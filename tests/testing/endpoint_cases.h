#pragma once

// One table of endpoint cases, asserted by admission (tests/admission/
// endpoint_vocabulary_test.cc, the endpoint check against the store) and by
// detection (tests/detect/endpoint_vocabulary_test.cc, endpoint.retired over
// endpoint.status events): both must give each case the answer written here,
// so they cannot disagree (issue 14, "Two meanings of one endpoint").
// The rule: common/endpoint.h and docs/configuration.md "Endpoints".

#include <string>
#include <vector>

namespace fg::testing {

struct KnownEndpointCase {
  std::string address;
  std::string status;  // active, draining, retired
};

struct EndpointCase {
  const char* name;
  std::vector<KnownEndpointCase> known;
  std::string reported;
  bool retired;  // admission denies endpoint.retired; detection raises endpoint.retired
};

inline std::vector<EndpointCase> EndpointCases() {
  return {
      // The regression: admission said retired, detection said nothing.
      {"host_without_port_is_every_port", {{"segw-old.example:500", "retired"}}, "segw-old.example", true},
      {"same_host_and_port", {{"segw-old.example:500", "retired"}}, "segw-old.example:500", true},
      {"host_case_does_not_matter", {{"segw-old.example:500", "retired"}}, "SEGW-OLD.Example:500", true},
      {"url_form_is_the_host_and_port", {{"segw-old.example:500", "retired"}}, "ikev2://segw-old.example:500/x", true},
      {"other_port_is_another_endpoint", {{"segw-old.example:500", "retired"}}, "segw-old.example:4500", false},
      {"retired_without_port_covers_every_port", {{"segw-old.example", "retired"}}, "segw-old.example:4500", true},
      {"an_active_port_of_the_host_wins", {{"segw-old.example:500", "retired"}, {"segw-old.example:4500", "active"}},
       "segw-old.example", false},
      {"a_draining_port_of_the_host_wins", {{"segw-old.example:500", "retired"}, {"segw-old.example:4500", "draining"}},
       "segw-old.example", false},
      {"draining_is_not_retired", {{"segw-old.example:500", "draining"}}, "segw-old.example", false},
      {"other_host", {{"segw-old.example:500", "retired"}}, "segw-new.example", false},
      {"suffix_is_not_the_host", {{"old.example:500", "retired"}}, "segw-old.example", false},
      {"ipv6_brackets", {{"[2001:db8::1]:500", "retired"}}, "2001:db8::1", true},
  };
}

}  // namespace fg::testing
