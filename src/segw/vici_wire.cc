#include "segw/vici_wire.h"

#include <unordered_set>

namespace fg::segw::vici {
namespace {

constexpr size_t kMaxName = 255;
constexpr size_t kMaxValue = 65535;

Status Malformed(const std::string& what, size_t offset) {
  return Status::InvalidArgument("vici: " + what + " at byte " + std::to_string(offset));
}

Status EncodeName(const std::string& name, std::string& out) {
  if (name.empty() || name.size() > kMaxName) {
    return Status::InvalidArgument("vici: name must be 1..255 bytes, got " + std::to_string(name.size()));
  }
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  return Status::Ok();
}

Status EncodeValue(const std::string& value, std::string& out) {
  if (value.size() > kMaxValue) {
    return Status::InvalidArgument("vici: value longer than 65535 bytes (" + std::to_string(value.size()) + ")");
  }
  out.push_back(static_cast<char>((value.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(value.size() & 0xff));
  out.append(value);
  return Status::Ok();
}

Status EncodeSection(const Section& section, std::string& out, int depth) {
  if (depth > 64) return Status::InvalidArgument("vici: sections nested too deep to encode");
  for (const auto& e : section.entries()) {
    switch (e.kind) {
      case Section::Kind::kValue:
        out.push_back(static_cast<char>(ElementType::kKeyValue));
        FG_RETURN_IF_ERROR(EncodeName(e.name, out));
        FG_RETURN_IF_ERROR(EncodeValue(e.value, out));
        break;
      case Section::Kind::kList:
        out.push_back(static_cast<char>(ElementType::kListStart));
        FG_RETURN_IF_ERROR(EncodeName(e.name, out));
        for (const auto& item : e.items) {
          out.push_back(static_cast<char>(ElementType::kListItem));
          FG_RETURN_IF_ERROR(EncodeValue(item, out));
        }
        out.push_back(static_cast<char>(ElementType::kListEnd));
        break;
      case Section::Kind::kSection:
        out.push_back(static_cast<char>(ElementType::kSectionStart));
        FG_RETURN_IF_ERROR(EncodeName(e.name, out));
        FG_RETURN_IF_ERROR(EncodeSection(*e.section, out, depth + 1));
        out.push_back(static_cast<char>(ElementType::kSectionEnd));
        break;
    }
  }
  return Status::Ok();
}

// Cursor over untrusted bytes; every read checks the bounds first.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return pos_ >= bytes_.size(); }
  size_t pos() const { return pos_; }

  Result<uint8_t> U8(const char* what) {
    if (pos_ + 1 > bytes_.size()) return Malformed(std::string("truncated ") + what, pos_);
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  Result<std::string> Name(const char* what) {
    size_t at = pos_;
    FG_ASSIGN_OR_RETURN(uint8_t len, U8(what));
    if (len == 0) return Malformed(std::string("empty ") + what, at);
    return Take(len, what);
  }
  Result<std::string> Value() {
    size_t at = pos_;
    if (pos_ + 2 > bytes_.size()) return Malformed("truncated value length", at);
    size_t len = (static_cast<size_t>(static_cast<uint8_t>(bytes_[pos_])) << 8) |
                 static_cast<uint8_t>(bytes_[pos_ + 1]);
    pos_ += 2;
    return Take(len, "value");
  }

 private:
  Result<std::string> Take(size_t len, const char* what) {
    if (len > bytes_.size() - pos_) return Malformed(std::string("truncated ") + what, pos_);
    std::string out(bytes_.substr(pos_, len));
    pos_ += len;
    return out;
  }

  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace

bool IsNamed(PacketType type) {
  return type == PacketType::kCmdRequest || type == PacketType::kEventRegister ||
         type == PacketType::kEventUnregister || type == PacketType::kEvent;
}

Section::Section(const Section& other) { *this = other; }

Section& Section::operator=(const Section& other) {
  if (this == &other) return *this;
  std::vector<Entry> copy;
  copy.reserve(other.entries_.size());
  for (const auto& e : other.entries_) {
    Entry c;
    c.kind = e.kind;
    c.name = e.name;
    c.value = e.value;
    c.items = e.items;
    if (e.section) c.section = std::make_unique<Section>(*e.section);
    copy.push_back(std::move(c));
  }
  entries_ = std::move(copy);
  return *this;
}

Section& Section::Set(std::string key, std::string value) {
  Entry e;
  e.kind = Kind::kValue;
  e.name = std::move(key);
  e.value = std::move(value);
  entries_.push_back(std::move(e));
  return *this;
}

Section& Section::SetList(std::string key, std::vector<std::string> items) {
  Entry e;
  e.kind = Kind::kList;
  e.name = std::move(key);
  e.items = std::move(items);
  entries_.push_back(std::move(e));
  return *this;
}

Section& Section::AddSection(std::string name) {
  Entry e;
  e.kind = Kind::kSection;
  e.name = std::move(name);
  e.section = std::make_unique<Section>();
  entries_.push_back(std::move(e));
  return *entries_.back().section;
}

const std::string* Section::Value(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.kind == Kind::kValue && e.name == key) return &e.value;
  }
  return nullptr;
}

const std::vector<std::string>* Section::List(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.kind == Kind::kList && e.name == key) return &e.items;
  }
  return nullptr;
}

const Section* Section::Child(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.kind == Kind::kSection && e.name == name) return e.section.get();
  }
  return nullptr;
}

std::string Section::Get(std::string_view key, std::string_view fallback) const {
  const std::string* v = Value(key);
  return v ? *v : std::string(fallback);
}

std::string Section::DebugString(int indent) const {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  std::string out;
  for (const auto& e : entries_) {
    switch (e.kind) {
      case Kind::kValue:
        out += pad + e.name + " = " + e.value + "\n";
        break;
      case Kind::kList: {
        out += pad + e.name + " = [";
        for (size_t i = 0; i < e.items.size(); ++i) out += (i ? ", " : " ") + e.items[i];
        out += " ]\n";
        break;
      }
      case Kind::kSection:
        out += pad + e.name + " {\n" + e.section->DebugString(indent + 1) + pad + "}\n";
        break;
    }
  }
  return out;
}

Result<std::string> EncodeMessage(const Section& message) {
  std::string out;
  FG_RETURN_IF_ERROR(EncodeSection(message, out, 0));
  return out;
}

Result<std::string> EncodePacket(const Packet& packet, const Limits& limits) {
  if (static_cast<uint8_t>(packet.type) > static_cast<uint8_t>(PacketType::kEvent)) {
    return Status::InvalidArgument("vici: unknown packet type");
  }
  std::string body;
  body.push_back(static_cast<char>(packet.type));
  if (IsNamed(packet.type)) {
    FG_RETURN_IF_ERROR(EncodeName(packet.name, body));
  } else if (!packet.name.empty()) {
    return Status::InvalidArgument("vici: this packet type carries no name");
  }
  FG_ASSIGN_OR_RETURN(std::string msg, EncodeMessage(packet.message));
  body += msg;
  if (body.size() > limits.max_packet) {
    return Status::InvalidArgument("vici: packet of " + std::to_string(body.size()) + " bytes exceeds the limit");
  }
  std::string out;
  out.reserve(4 + body.size());
  uint32_t n = static_cast<uint32_t>(body.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out += body;
  return out;
}

Result<Section> DecodeMessage(std::string_view bytes, const Limits& limits) {
  if (bytes.size() > limits.max_packet) return Malformed("message larger than the limit", 0);
  Reader r(bytes);
  Section root;
  // Open sections (back() is the current one) and the key names used in each.
  std::vector<Section*> stack = {&root};
  std::vector<std::unordered_set<std::string>> keys(1);
  // The open list: lists hold items only, so it is added to the current
  // section when it ends.
  bool in_list = false;
  std::string list_name;
  std::vector<std::string> list_items;
  size_t elements = 0;
  while (!r.done()) {
    size_t at = r.pos();
    if (++elements > limits.max_elements) return Malformed("too many elements", at);
    FG_ASSIGN_OR_RETURN(uint8_t type, r.U8("element type"));
    switch (static_cast<ElementType>(type)) {
      case ElementType::kSectionStart: {
        if (in_list) return Malformed("section inside a list", at);
        if (static_cast<int>(stack.size()) > limits.max_depth) return Malformed("sections nested too deep", at);
        FG_ASSIGN_OR_RETURN(std::string name, r.Name("section name"));
        stack.push_back(&stack.back()->AddSection(std::move(name)));
        keys.emplace_back();
        break;
      }
      case ElementType::kSectionEnd:
        if (in_list) return Malformed("section end inside a list", at);
        if (stack.size() == 1) return Malformed("section end without a section", at);
        stack.pop_back();
        keys.pop_back();
        break;
      case ElementType::kKeyValue: {
        if (in_list) return Malformed("key/value inside a list", at);
        FG_ASSIGN_OR_RETURN(std::string key, r.Name("key"));
        FG_ASSIGN_OR_RETURN(std::string value, r.Value());
        if (!keys.back().insert(key).second) return Malformed("duplicate key '" + key + "'", at);
        stack.back()->Set(std::move(key), std::move(value));
        break;
      }
      case ElementType::kListStart: {
        if (in_list) return Malformed("list inside a list", at);
        FG_ASSIGN_OR_RETURN(list_name, r.Name("list name"));
        if (!keys.back().insert(list_name).second) return Malformed("duplicate key '" + list_name + "'", at);
        in_list = true;
        list_items.clear();
        break;
      }
      case ElementType::kListItem: {
        if (!in_list) return Malformed("list item outside a list", at);
        FG_ASSIGN_OR_RETURN(std::string value, r.Value());
        list_items.push_back(std::move(value));
        break;
      }
      case ElementType::kListEnd:
        if (!in_list) return Malformed("list end without a list", at);
        stack.back()->SetList(std::move(list_name), std::move(list_items));
        list_name.clear();
        list_items.clear();
        in_list = false;
        break;
      default:
        return Malformed("unknown element type " + std::to_string(type), at);
    }
  }
  if (in_list) return Malformed("unterminated list", bytes.size());
  if (stack.size() != 1) return Malformed("unterminated section", bytes.size());
  return root;
}

Result<Packet> DecodePacket(std::string_view payload, const Limits& limits) {
  if (payload.empty()) return Malformed("empty packet", 0);
  if (payload.size() > limits.max_packet) return Malformed("packet larger than the limit", 0);
  uint8_t type = static_cast<uint8_t>(payload[0]);
  if (type > static_cast<uint8_t>(PacketType::kEvent)) {
    return Malformed("unknown packet type " + std::to_string(type), 0);
  }
  Packet p;
  p.type = static_cast<PacketType>(type);
  size_t pos = 1;
  if (IsNamed(p.type)) {
    if (payload.size() < 2) return Malformed("truncated packet name", 1);
    size_t len = static_cast<uint8_t>(payload[1]);
    if (len == 0) return Malformed("empty packet name", 1);
    if (len > payload.size() - 2) return Malformed("truncated packet name", 2);
    p.name = std::string(payload.substr(2, len));
    pos = 2 + len;
  }
  auto msg = DecodeMessage(payload.substr(pos), limits);
  if (!msg.ok()) return Status::InvalidArgument(msg.status().message() + " (message starts at byte " +
                                                std::to_string(pos) + ")");
  p.message = std::move(*msg);
  return p;
}

Result<size_t> DecodeLength(const unsigned char prefix[4], const Limits& limits) {
  size_t n = (static_cast<size_t>(prefix[0]) << 24) | (static_cast<size_t>(prefix[1]) << 16) |
             (static_cast<size_t>(prefix[2]) << 8) | static_cast<size_t>(prefix[3]);
  if (n == 0) return Status::InvalidArgument("vici: zero-length packet");
  if (n > limits.max_packet) {
    return Status::InvalidArgument("vici: packet of " + std::to_string(n) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_packet));
  }
  return n;
}

}  // namespace fg::segw::vici
