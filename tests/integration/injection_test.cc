// Injection strings through every door of a live node (issue 13,
// "Unauthenticated surfaces"): newline, carriage return, an escape
// sequence, NUL, very long and non-UTF-8 values in device ids, CNs, token
// references, sessions, owners and prefixes, sent to POST /v1/events,
// registry import, POST /v1/admission, EST (Basic auth and client
// certificate) and CMP. Each must get a clear error and a metric, change
// nothing, and forge no line anywhere: not in `audit list`, `alert list`,
// `device list`, nor in serve's log. And: N replays of one captured CMP
// message from one source make one audit row with count N, not N rows.

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "integration/fg_node_fixture.h"

namespace fg::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Every injected value carries this right after its control characters: a
// forged line would start with it.
constexpr char kForged[] = "FORGED-LINE";

// True when some line of `text` starts with kForged, or a terminal escape
// or a NUL got through.
::testing::AssertionResult NoForgedLine(const std::string& where, const std::string& text) {
  std::regex forged(std::string("(^|[\\n\\r])[ \\t]*") + kForged);
  if (std::regex_search(text, forged)) {
    return ::testing::AssertionFailure() << where << " has a forged line:\n" << text;
  }
  if (text.find('\x1b') != std::string::npos) {
    return ::testing::AssertionFailure() << where << " carries an escape sequence";
  }
  if (text.find('\0') != std::string::npos)
    return ::testing::AssertionFailure() << where << " carries a NUL";
  return ::testing::AssertionSuccess();
}

class InjectionTest : public NodeFixture {
 protected:
  static void SetUpTestSuite() {
    StartNode();
    WriteAll(P("registry.jsonl"),
             R"({"device":"FG-INJ-1","status":"active","mode":"closed","prefixes":["10.9.0.0/16"]})"
             "\n");
    auto imp = Fg({"device", "import", "--data", data_, "--registry", P("registry.jsonl")});
    ASSERT_EQ(imp.exit_code, 0) << imp.out;
    for (const char* role : {"segw", "ingest", "operator"}) {
      auto t = Fg({"token", "create", "--data", data_, "--role", role});
      ASSERT_EQ(t.exit_code, 0) << t.out;
      tokens_[role] = FindApiToken(t.out);
    }
  }
  static void TearDownTestSuite() { StopNode(); }

  // (HTTP status, body) of a request on the TLS listener (the API is there).
  static std::pair<std::string, std::string> Http(const std::string& method,
                                                  const std::string& path, const std::string& token,
                                                  const std::string& body = {}) {
    return Api(method, path, token, body);
  }

  // The value of one counter (name with its labels) in /metrics; 0 if absent.
  static uint64_t Metric(const std::string& series) {
    auto [code, body] = Http("GET", "/metrics", tokens_["operator"]);
    EXPECT_EQ(code, "200");
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(series + " ", 0) == 0) return std::stoull(line.substr(series.size() + 1));
    }
    return 0;
  }

  // What an operator sees, and what serve logged: none may hold a forged line.
  static void ExpectNothingForgedAnywhere() {
    EXPECT_TRUE(
        NoForgedLine("audit list", Fg({"audit", "list", "--data", data_, "--limit", "0"}).out));
    EXPECT_TRUE(NoForgedLine("alert list", Fg({"alert", "list", "--data", data_}).out));
    EXPECT_TRUE(
        NoForgedLine("alert list --json", Fg({"alert", "list", "--data", data_, "--json"}).out));
    EXPECT_TRUE(NoForgedLine("device list", Fg({"device", "list", "--data", data_}).out));
    EXPECT_TRUE(NoForgedLine("device show",
                             Fg({"device", "show", "--data", data_, "--device", "FG-INJ-1"}).out));
    EXPECT_TRUE(NoForgedLine("cert list", Fg({"cert", "list", "--data", data_}).out));
    EXPECT_TRUE(NoForgedLine("serve log", ReadAll(P("serve.log"))));
  }

  // A snapshot of what the doors must not change.
  static std::string StoreState() {
    return Fg({"device", "list", "--data", data_}).out + Fg({"cert", "list", "--data", data_}).out +
           Fg({"alert", "list", "--data", data_}).out;
  }

  // Values that must be refused in an identifier field, as JSON string
  // literals (the JSON escapes become the raw characters once decoded).
  static std::vector<std::string> JsonInjections(const std::string& base) {
    return {json(base + "\n" + kForged).dump(),
            json(base + "\r" + kForged).dump(),
            json(base + "\x1b[2J\x1b[31m" + kForged).dump(),
            json(base + std::string("\0", 1) + kForged).dump(),
            json(base + "\xe2\x80\xae" + kForged).dump(),  // U+202E: reorders a terminal line
            json(base + std::string(5000, 'A')).dump()};
  }

  static inline std::map<std::string, std::string> tokens_;
};

TEST_F(InjectionTest, EventsDoorRefusesBadIdentifiersAndCountsThem) {
  const std::string before = StoreState();
  const uint64_t bad_device =
      Metric(R"(femtoguard_bad_identifier_total{door="events",field="device"})");
  const uint64_t bad_session =
      Metric(R"(femtoguard_bad_identifier_total{door="events",field="session"})");
  std::string body;
  size_t lines = 0;
  for (const std::string& dev : JsonInjections("FG-INJ-1")) {
    body += R"({"ts":"2026-01-01T00:00:00Z","type":"session.down","device":)" + dev + "}\n";
    ++lines;
  }
  // Bytes that are not UTF-8 at all, raw in the body.
  body += std::string(R"({"ts":"2026-01-01T00:00:00Z","type":"session.down","device":"FG-)") +
          "\xff\xfe" + kForged + "\"}\n";
  ++lines;
  for (const std::string& s : JsonInjections("ike-")) {
    body += R"({"ts":"2026-01-01T00:00:00Z","type":"session.up","device":"FG-INJ-1","session":)" +
            s + "}\n";
    ++lines;
  }
  auto [code, reply] = Http("POST", "/v1/events", tokens_["ingest"], body);
  EXPECT_EQ(code, "400") << reply;
  json r = json::parse(reply, nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << reply;
  EXPECT_EQ(r["accepted"], 0) << reply;
  ASSERT_EQ(r["malformed"].size(), lines) << reply;
  EXPECT_THAT(r["malformed"].dump(), HasSubstr("field 'device'"));
  EXPECT_THAT(r["malformed"].dump(), HasSubstr("field 'session'"));
  EXPECT_THAT(reply, Not(HasSubstr(kForged))) << "errors name fields, never values";
  // Five bad device ids (the sixth, too long, is refused for its size) and
  // five bad sessions counted as identifiers.
  EXPECT_GE(Metric(R"(femtoguard_bad_identifier_total{door="events",field="device"})"),
            bad_device + 4);
  EXPECT_GE(Metric(R"(femtoguard_bad_identifier_total{door="events",field="session"})"),
            bad_session + 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // detection would have acted by now
  EXPECT_EQ(StoreState(), before);
  ExpectNothingForgedAnywhere();
}

TEST_F(InjectionTest, RegistryImportRefusesBadLinesByNumberAndWritesNothing) {
  const std::string before = StoreState();
  const std::string audit_before = Fg({"audit", "list", "--data", data_, "--limit", "0"}).out;
  std::string file;
  for (const std::string& dev : JsonInjections("FG-REG-")) file += R"({"device":)" + dev + "}\n";
  for (const std::string& v : JsonInjections("acct-"))
    file += R"({"device":"FG-REG-OWNER","owner":)" + v + "}\n";
  for (const std::string& v : JsonInjections("10.0.0.0/8")) {
    file += R"({"device":"FG-REG-PFX","prefixes":[)" + v + "]}\n";
  }
  for (const std::string& v : JsonInjections("sha256:00")) {
    file += R"({"device":"FG-REG-FP","cert_fp":)" + v + "}\n";
  }
  for (const std::string& v : JsonInjections("active"))
    file += R"({"device":"FG-REG-ST","status":)" + v + "}\n";
  file += std::string(R"({"device":"FG-REG-)") + "\xff\xfe" + kForged + "\"}\n";
  WriteAll(P("bad-registry.jsonl"), file);
  auto imp = Fg({"device", "import", "--data", data_, "--registry", P("bad-registry.jsonl")});
  EXPECT_NE(imp.exit_code, 0) << imp.out;
  EXPECT_THAT(imp.out, HasSubstr("bad-registry.jsonl:1: field 'device'"));
  EXPECT_THAT(imp.out, HasSubstr("field 'owner'"));
  EXPECT_THAT(imp.out, HasSubstr("field 'prefixes'"));
  EXPECT_THAT(imp.out, HasSubstr("field 'cert_fp'"));
  EXPECT_THAT(imp.out, HasSubstr("field 'status'"));
  EXPECT_THAT(imp.out, HasSubstr("nothing imported: 31 line(s) rejected"));
  EXPECT_TRUE(NoForgedLine("device import", imp.out));
  EXPECT_EQ(StoreState(), before);
  EXPECT_EQ(Fg({"audit", "list", "--data", data_, "--limit", "0"}).out, audit_before);
  ExpectNothingForgedAnywhere();
}

TEST_F(InjectionTest, CliArgumentsAreCheckedBeforeAnythingIsWritten) {
  const std::string before = StoreState();
  auto add = Fg({"device", "add", "--data", data_, "--device", std::string("FG-CLI\n") + kForged});
  EXPECT_EQ(add.exit_code, 2) << add.out;
  EXPECT_THAT(add.out, HasSubstr("device id"));
  EXPECT_TRUE(NoForgedLine("device add", add.out));
  auto reason = Fg({"device", "set-status", "--data", data_, "--device", "FG-INJ-1", "--status",
                    "suspended", "--reason", std::string("dormant\x1b[2J\n") + kForged});
  EXPECT_EQ(reason.exit_code, 2) << reason.out;
  EXPECT_TRUE(NoForgedLine("device set-status", reason.out));
  EXPECT_EQ(StoreState(), before);
}

TEST_F(InjectionTest, AdmissionDoorRefusesBadIdentifiersWithoutADecision) {
  const std::string log_before = ReadAll(data_ + "/log/admission.jsonl");
  const uint64_t bad =
      Metric(R"(femtoguard_bad_identifier_total{door="admission",field="device"})");
  const uint64_t bad_requests = Metric("femtoguard_admission_api_bad_requests_total");
  size_t sent = 0;
  for (const std::string& dev : JsonInjections("FG-INJ-1")) {
    auto [code, body] =
        Http("POST", "/v1/admission", tokens_["segw"],
             R"({"device":)" + dev + R"(,"session":"s-1","src_ip":"10.9.1.1","endpoint":"segw1"})");
    EXPECT_EQ(code, "400") << body;
    EXPECT_THAT(body, HasSubstr("device"));
    EXPECT_THAT(body, Not(HasSubstr(kForged)));
    ++sent;
  }
  for (const char* field : {"session", "src_ip", "endpoint", "segw", "cert_fp"}) {
    json req = {
        {"device", "FG-INJ-1"}, {"session", "s-2"}, {"src_ip", "10.9.1.1"}, {"endpoint", "segw1"}};
    req[field] = std::string("x\n") + kForged;
    auto [code, body] = Http("POST", "/v1/admission", tokens_["segw"], req.dump());
    EXPECT_EQ(code, "400") << field << ": " << body;
    EXPECT_THAT(body, HasSubstr(field));
    ++sent;
  }
  EXPECT_GE(Metric(R"(femtoguard_bad_identifier_total{door="admission",field="device"})"), bad + 5);
  EXPECT_EQ(Metric("femtoguard_admission_api_bad_requests_total"), bad_requests + sent);
  EXPECT_EQ(ReadAll(data_ + "/log/admission.jsonl"), log_before) << "no decision was made";
  ExpectNothingForgedAnywhere();
}

TEST_F(InjectionTest, EstBasicAuthReferenceCannotForgeALogOrAuditLine) {
  const size_t certs = CertCount();
  const uint64_t bad = Metric(R"(femtoguard_bad_identifier_total{door="est",field="reference"})");
  const uint64_t refused = Metric(R"(femtoguard_enrolment_refused_total{reason="bad_identifier"})");
  std::string key = NewKey("est-inj.key");
  std::string csr = EstCsr(key, "FG-INJ-1");
  for (std::string ref : {std::string("tok-1\n") + kForged, std::string("tok-1\r\n") + kForged,
                          std::string("tok-1\x1b[31m") + kForged,
                          std::string("tok-\xff\xfe") + kForged, std::string(3000, 't')}) {
    auto x = EstPost("simpleenroll", csr, {"-u", ref + ":0123456789abcdef"});
    EXPECT_EQ(x.status, 401) << x.curl_out << x.Body();
    EXPECT_THAT(x.Body(), Not(HasSubstr(kForged)));
  }
  EXPECT_GE(Metric(R"(femtoguard_bad_identifier_total{door="est",field="reference"})"), bad + 4);
  EXPECT_GE(Metric(R"(femtoguard_enrolment_refused_total{reason="bad_identifier"})"), refused + 4);
  EXPECT_EQ(CertCount(), certs);
  ExpectNothingForgedAnywhere();
}

TEST_F(InjectionTest, EstClientCertificateAndCsrCnCannotForgeALine) {
  const size_t certs = CertCount();
  // A self-signed client certificate whose CN holds a newline: untrusted,
  // refused, and its CN appears in the audit log only escaped.
  std::string key = NewKey("evil.key");
  auto self = Sh({"openssl", "req", "-x509", "-new", "-key", key, "-subj",
                  std::string("/CN=FG-EVIL\n") + kForged, "-days", "2", "-out", P("evil.pem")});
  ASSERT_EQ(self.exit_code, 0) << self.out;
  auto x = EstPost("simpleenroll", EstCsr(NewKey("evil2.key"), "FG-INJ-1"),
                   {"--cert", P("evil.pem"), "--key", key});
  EXPECT_EQ(x.status, 401) << x.curl_out << x.Body();

  // A CSR whose CN holds a newline, with a good bootstrap token: refused as
  // a bad identifier; the token is not consumed.
  AddDevice("FG-INJ-EST");
  auto [ref, secret] = Token("FG-INJ-EST");
  std::string csr_key = NewKey("inj-csr.key");
  std::string der = P("inj-csr.der"), b64 = P("inj-csr.b64");
  ASSERT_EQ(Sh({"openssl", "req", "-new", "-key", csr_key, "-subj",
                std::string("/CN=FG-INJ-EST\n") + kForged, "-outform", "DER", "-out", der})
                .exit_code,
            0);
  ASSERT_EQ(Sh({"openssl", "base64", "-in", der, "-out", b64}).exit_code, 0);
  auto bad_cn = EstPost("simpleenroll", b64, {"-u", ref + ":" + secret});
  EXPECT_EQ(bad_cn.status, 400) << bad_cn.Body();
  EXPECT_THAT(bad_cn.Body(), HasSubstr("not a valid device id"));
  EXPECT_THAT(bad_cn.Body(), Not(HasSubstr(kForged)));
  EXPECT_EQ(CertCount(), certs);
  // The same token still works with a good CSR.
  auto good = EstPost("simpleenroll", EstCsr(csr_key, "FG-INJ-EST"), {"-u", ref + ":" + secret});
  EXPECT_EQ(good.status, 200) << good.Body();
  ExpectNothingForgedAnywhere();
}

TEST_F(InjectionTest, CmpReferenceAndSubjectCannotForgeALine) {
  const size_t certs = CertCount();
  const uint64_t bad_ref =
      Metric(R"(femtoguard_bad_identifier_total{door="cmp",field="reference"})");
  std::string key = NewKey("cmp-inj.key");
  auto r = Cmp({"-cmd", "ir", "-ref", std::string("tok-1\n") + kForged, "-secret",
                "pass:0123456789abcdef", "-newkey", key, "-subject", "/CN=FG-INJ-1", "-certout",
                P("cmp-inj.pem"), "-unprotected_errors"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_GE(Metric(R"(femtoguard_bad_identifier_total{door="cmp",field="reference"})"),
            bad_ref + 1);

  AddDevice("FG-INJ-CMP");
  auto [ref, secret] = Token("FG-INJ-CMP");
  auto subj = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey", key,
                   "-subject", std::string("/CN=FG-INJ-CMP\n") + kForged, "-certout",
                   P("cmp-inj2.pem"), "-unprotected_errors"});
  EXPECT_NE(subj.exit_code, 0) << subj.out;
  EXPECT_THAT(subj.out, HasSubstr("not a valid device id"));
  EXPECT_EQ(CertCount(), certs);
  ExpectNothingForgedAnywhere();
}

// Its own node: the replays below throttle 127.0.0.1, which must not touch
// the other tests' enrolments.
class CmpReplayTest : public InjectionTest {};

TEST_F(CmpReplayTest, ReplaysOfOneCapturedMessageMakeOneAuditRowWithTheirCount) {
  AddDevice("FG-REPLAY");
  auto [ref, secret] = Token("FG-REPLAY");
  // The genuine ir, captured on its way (single message: implicit confirm).
  auto ok = Cmp({"-cmd", "ir", "-ref", ref, "-secret", "pass:" + secret, "-newkey",
                 NewKey("replay.key"), "-subject", "/CN=FG-REPLAY", "-implicit_confirm", "-reqout",
                 P("ir.der"), "-certout", P("replay.pem")});
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  ASSERT_GT(ReadAll(P("ir.der")).size(), 100u);
  // All replays inside one calendar minute, so that there is one row to find.
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(now).count() % 60;
  if (second > 40) std::this_thread::sleep_for(std::chrono::seconds(61 - second));
  const std::string audit_before = Fg({"audit", "list", "--data", data_, "--limit", "0"}).out;
  const size_t rows_before = std::count(audit_before.begin(), audit_before.end(), '\n');

  constexpr int kReplays = 150;
  std::map<std::string, int> codes;
  for (int i = 0; i < kReplays; ++i) {
    auto c = Sh({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                 "Content-Type: application/pkixcmp", "--data-binary", "@" + P("ir.der"),
                 url_ + "/pkix/"});
    ++codes[c.out];
  }
  // The first 3 get the certificate again (the same key within the retry
  // window: a device whose answer was lost, docs/pki.md), each audited; the
  // next 60 are looked at and refused (the token is used), the rest are
  // throttled before they are even decoded.
  constexpr int kRedelivered = 3;
  EXPECT_EQ(codes["200"], kRedelivered + 60) << ::testing::PrintToString(codes);
  EXPECT_EQ(codes["429"], kReplays - kRedelivered - 60) << ::testing::PrintToString(codes);
  EXPECT_EQ(CertCount("FG-REPLAY"), 1u);

  // One aggregated row for 127.0.0.1, its count brought up to date within a second or so.
  const int refused = kReplays - kRedelivered;
  std::string audit;
  for (int i = 0; i < 50; ++i) {
    audit = Fg({"audit", "list", "--data", data_, "--subject", "127.0.0.1", "--limit", "0"}).out;
    if (audit.find("\"count\":" + std::to_string(refused)) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(audit, HasSubstr("\"count\":" + std::to_string(refused))) << audit;
  EXPECT_THAT(audit, HasSubstr("\"rate_limited\":" + std::to_string(refused - 60))) << audit;
  EXPECT_THAT(audit, HasSubstr("\"token_used\":60")) << audit;
  // At most one row per minute: a replay run that straddles a minute
  // boundary makes two.
  const size_t rows = std::count(audit.begin(), audit.end(), '\n');
  EXPECT_GE(rows, 1u);
  EXPECT_LE(rows, 2u) << audit;
  const std::string after = Fg({"audit", "list", "--data", data_, "--limit", "0"}).out;
  size_t redeliveries = 0;
  for (size_t at = after.find("cert.redeliver"); at != std::string::npos; at = after.find("cert.redeliver", at + 1)) {
    ++redeliveries;
  }
  EXPECT_EQ(redeliveries, static_cast<size_t>(kRedelivered)) << after;
  EXPECT_LE(static_cast<size_t>(std::count(after.begin(), after.end(), '\n')), rows_before + 2 + kRedelivered)
      << after;
  EXPECT_EQ(Metric(R"(femtoguard_enrolment_refused_total{reason="token_used"})"), 60u);
  EXPECT_EQ(Metric(R"(femtoguard_enrolment_refused_total{reason="rate_limited"})"),
            static_cast<uint64_t>(refused - 60));
}

}  // namespace
}  // namespace fg::testing
