#pragma once

// A femtoguard node (init + serve) in a temp dir for one test suite, and the
// helpers the enrolment tests share: real `openssl` for keys, CSRs and CMP.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "testing/harness.h"

namespace fg::testing {

class NodeFixture : public ::testing::Test {
 protected:
  static void StartNode() {
    dir_ = new TempDir();
    port_ = FreePort();
    data_ = *dir_ / "data";
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    auto init = Fg({"init", "--data", data_, "--listen", "127.0.0.1:" + std::to_string(port_)});
    ASSERT_EQ(init.exit_code, 0) << init.out;
    WriteAll(*dir_ / "chain.pem", Fg({"ca", "cert", "--data", data_, "--chain"}).out);
    WriteAll(*dir_ / "root.pem", Fg({"ca", "cert", "--data", data_, "--root"}).out);
    WriteAll(*dir_ / "issuing.pem", Fg({"ca", "cert", "--data", data_}).out);
    serve_ = new Process({Femtoguard(), "serve", "--data", data_, "--threads", "2"}, *dir_ / "serve.log");
    ASSERT_TRUE(WaitForHttp(url_ + "/healthz")) << ReadAll(*dir_ / "serve.log");
  }
  static void StopNode() {
    delete serve_;
    serve_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  static RunResult Fg(std::vector<std::string> args) {
    args.insert(args.begin(), Femtoguard());
    return fg::testing::Run(args);
  }
  static RunResult Sh(const std::vector<std::string>& argv) { return fg::testing::Run(argv); }
  static std::string P(const std::string& name) { return *dir_ / name; }

  // A fresh P-256 key file.
  static std::string NewKey(const std::string& name) {
    std::string path = P(name);
    auto r = Sh({"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return path;
  }

  static void AddDevice(const std::string& id, const std::string& status = "provisioned",
                        const std::vector<std::string>& prefixes = {}) {
    std::vector<std::string> args = {"device", "add", "--data", data_, "--device", id, "--status", status};
    for (const auto& p : prefixes) {
      args.push_back("--prefix");
      args.push_back(p);
    }
    auto r = Fg(args);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  // `openssl cmp` against this node's /pkix/ with the given arguments.
  static RunResult Cmp(std::vector<std::string> args) {
    std::vector<std::string> argv = {"openssl", "cmp", "-server", "127.0.0.1:" + std::to_string(port_),
                                     "-path", "pkix/", "-msg_timeout", "20", "-total_timeout", "30"};
    argv.insert(argv.end(), args.begin(), args.end());
    return fg::testing::Run(argv);
  }

  static std::pair<std::string, std::string> Token(const std::string& device) {
    auto r = Fg({"device", "token", "--data", data_, "--device", device});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::smatch m;
    std::regex re("(tok-[0-9a-f]+) ([0-9a-f]+)");
    if (!std::regex_search(r.out, m, re)) return {};
    return {m[1], m[2]};
  }

  static size_t CertCount(const std::string& device = {}) {
    std::vector<std::string> args = {"cert", "list", "--data", data_};
    if (!device.empty()) {
      args.push_back("--device");
      args.push_back(device);
    }
    auto out = Fg(args).out;
    return static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) - 1;  // minus header
  }

  static std::string Subject(const std::string& cert) {
    return Sh({"openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253"}).out;
  }

  static std::string OcspStatus(const std::string& cert) {
    return Sh({"openssl", "ocsp", "-url", url_ + "/ocsp", "-issuer", P("issuing.pem"), "-cert", cert, "-CAfile",
               P("chain.pem"), "-no_nonce"})
        .out;
  }

  static TempDir* dir_;
  static Process* serve_;
  static int port_;
  static std::string data_;
  static std::string url_;
};

}  // namespace fg::testing
