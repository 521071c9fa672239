#include "common/der.h"

#include <openssl/asn1.h>
#include <openssl/err.h>

namespace fg::der {

Result<Element> Parse(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* start = p;
  long len = 0;
  int tag = 0, cls = 0;
  int ret = ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(der.size()));
  if ((ret & 0x80) != 0 || ret == 0x21) {  // error, or indefinite length
    ERR_clear_error();
    return Status::InvalidArgument("malformed DER");
  }
  size_t header = static_cast<size_t>(p - start);
  if (len < 0 || header + static_cast<size_t>(len) > der.size()) {
    return Status::InvalidArgument("DER element overruns its container");
  }
  Element e;
  e.tag = tag;
  e.cls = cls;
  e.constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
  e.whole = der.substr(0, header + static_cast<size_t>(len));
  e.content = der.substr(header, static_cast<size_t>(len));
  return e;
}

Result<std::vector<Element>> Children(std::string_view der) {
  std::vector<Element> out;
  while (!der.empty()) {
    FG_ASSIGN_OR_RETURN(Element e, Parse(der));
    der.remove_prefix(e.whole.size());
    out.push_back(e);
    if (out.size() > 4096) return Status::InvalidArgument("too many DER elements");
  }
  return out;
}

const Element* FindContext(const std::vector<Element>& elements, int tag) {
  for (const Element& e : elements) {
    if (e.cls == V_ASN1_CONTEXT_SPECIFIC && e.tag == tag) return &e;
  }
  return nullptr;
}

}  // namespace fg::der
