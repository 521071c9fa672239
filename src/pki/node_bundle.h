#pragma once

// The node bundle (docs/cluster.md): what a second node of a cluster needs
// from the first, in one file. `femtoguard node bundle` writes it, `node
// join` reads it.
//
// Contents (a JSON document, never written or printed in clear):
//   {"format": "femtoguard-node-bundle/1", "created": RFC 3339,
//    "ca_name", "root_fp": "sha256:<hex>" (of the root CA certificate),
//    "passphrase_generated": bool (the CA passphrase was the data dir's
//      generated secrets/ca.passphrase; the joining node keeps it the same way),
//    "issuing_key": "file" | "hsm",
//    "hsm": {"uri", "module", "note"} (only with an HSM: the key stays in it),
//    "config": the cluster-wide config.yaml (ClusterWideConfigYaml),
//    "files": [{"path": "ca/root.crt", "mode": 420, "base64": ...}, ...]}
// `files` holds every regular file of DIR/ca (certificates, the encrypted
// CA and service keys, retired CAs) and the data dir's shared secrets:
// secrets/pseudonym.key, token.key, webhook.key and service-keys.secret
// (with an HSM). Not secrets/ca.passphrase: the bundle is encrypted under
// that passphrase, and the joining operator brings it.
//
// The file is a standard container: CMS (RFC 5652) EnvelopedData, DER, with
// one password recipient (PWRI, RFC 3211): the content is encrypted with
// AES-256-CBC under a random key, wrapped (AES-256, RFC 3211 key wrap) under
// a key-encryption key derived from the CA passphrase with PBKDF2,
// kBundlePbkdf2Iterations iterations. The PRF is HMAC-SHA1: OpenSSL 3.0's
// CMS_add0_recipient_password ignores the PRF it is given (later versions
// honour the HMAC-SHA256 asked for; readers take either). HMAC-SHA1 in
// PBKDF2 is not weakened by SHA-1 collisions; the iteration count is OWASP's
// for PBKDF2-HMAC-SHA1. So that
//   openssl cms -decrypt -inform DER -in node.bundle -pwri_password PASS
// opens it as well.

#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace fg {

inline constexpr int kBundlePbkdf2Iterations = 1300000;

struct NodeBundle {
  struct File {
    std::string path;  // relative: "ca/..." or "secrets/..."
    unsigned mode = 0600;
    std::string data;
  };
  std::string created;
  std::string ca_name;
  std::string root_fp;
  bool passphrase_generated = false;
  std::string hsm_uri;  // non-empty: the issuing CA key is in this token
  std::string hsm_module;
  std::string config_yaml;
  std::vector<File> files;

  NodeBundle() = default;
  NodeBundle(const NodeBundle&) = delete;
  NodeBundle& operator=(const NodeBundle&) = delete;
  NodeBundle(NodeBundle&&) = default;
  NodeBundle& operator=(NodeBundle&&) = default;
  ~NodeBundle();  // wipes the file contents
};

// Gathers the bundle of the data dir `dir` (its config as loaded).
Result<NodeBundle> CollectNodeBundle(const DataDir& dir, const Config& config);

// The encrypted container (DER). `iterations` only for tests.
Result<std::string> SealNodeBundle(const NodeBundle& bundle, std::string_view passphrase,
                                   int iterations = kBundlePbkdf2Iterations);

// Opens a container: InvalidArgument when it is not one, or when the
// passphrase is wrong (indistinguishable from a damaged file, and said so),
// or when its contents are not a well-formed bundle (a path outside ca/ and
// secrets/, say).
Result<NodeBundle> OpenNodeBundle(std::string_view der, std::string_view passphrase);

}  // namespace fg
