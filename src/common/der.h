#pragma once

// Walking DER structures with OpenSSL's own TLV parser (ASN1_get_object),
// for the few fields OpenSSL 3.0 has no accessor for (CMP header senderKID
// and protectionAlg, extraCerts, the CRMF template's public key). Not a
// codec: it only finds elements; OpenSSL's d2i functions decode them.

#include <string_view>
#include <vector>

#include "common/status.h"

namespace fg::der {

struct Element {
  int tag = 0;
  int cls = 0;  // V_ASN1_UNIVERSAL, V_ASN1_CONTEXT_SPECIFIC, ...
  bool constructed = false;
  std::string_view whole;    // header + content
  std::string_view content;  // content only
};

// The elements directly inside `der` (a run of TLVs, e.g. a SEQUENCE's
// content). InvalidArgument on malformed or indefinite-length encodings.
Result<std::vector<Element>> Children(std::string_view der);

// The single TLV at the start of `der`.
Result<Element> Parse(std::string_view der);

// First child with context-specific tag `tag`, if any.
const Element* FindContext(const std::vector<Element>& elements, int tag);

}  // namespace fg::der
