// femtoguard payments release --imsi IMSI: lifts the hold that a detection
// (hold_payments) put on a subscriber's carrier-billed payments. The IMSI is
// pseudonymized with the data dir's key before it is looked up: it is never
// stored, logged or printed; the audit log names the pseudonym.

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "cli/commands.h"
#include "common/pseudonym.h"

namespace fg::cli {

void RegisterPaymentsCommands(CLI::App& app, Program& program) {
  auto* payments = app.add_subcommand("payments", "carrier-billed payment holds");
  payments->require_subcommand(1);
  auto* cmd = payments->add_subcommand("release", "release one subscriber's payment hold");
  auto data = std::make_shared<std::string>();
  auto imsi = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  AddDataOption(cmd, data.get());
  cmd->add_option("--imsi", *imsi, "the subscriber's IMSI (pseudonymized before use)")->required();
  cmd->add_option("--reason", *reason, "why (goes to the audit log)")
      ->check(IdArg(IdKind::kText, 512));
  RunWithEnv(cmd, program, data, [imsi, reason](Env& env) {
    const bool valid = imsi->size() >= 5 && imsi->size() <= 15 &&
                       std::all_of(imsi->begin(), imsi->end(), [](char c) {
                         return std::isdigit(static_cast<unsigned char>(c));
                       });
    if (!valid) {
      OPENSSL_cleanse(imsi->data(), imsi->size());
      return Fail(
          Status::InvalidArgument("--imsi must be 5 to 15 digits"));  // the value is not echoed
    }
    auto key = env.dir.LoadPseudonymKey();
    if (!key.ok()) return Fail(key.status());
    const std::string subject = Pseudonymizer(std::move(key).value()).Pseudonymize("imsi", *imsi);
    OPENSSL_cleanse(imsi->data(), imsi->size());
    Status s = env.store->RemoveBlock("payments", subject,
                                      CliAudit(reason->empty() ? "payments release" : *reason));
    if (s.IsNotFound()) return Fail(Status::NotFound("no payment hold for subscriber " + subject));
    if (!s.ok()) return Fail(s);
    NotifyServeOrWarn(env.dir);  // the payment check allows the subscriber again now
    std::fprintf(stderr, "femtoguard: payment hold on %s released\n", subject.c_str());
    return 0;
  });
}

}  // namespace fg::cli
