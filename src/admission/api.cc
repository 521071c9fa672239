#include "admission/api.h"

#include "common/rem_cell.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/metrics.h"

namespace fg::admission {
namespace {

using json = nlohmann::json;

Status Bad(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

Status ReadString(const json& j, const char* key, std::string* out, bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Bad(std::string("missing \"") + key + "\"") : Status::Ok();
  }
  if (!it->is_string()) return Bad(std::string("\"") + key + "\" must be a string");
  *out = it->get<std::string>();
  if (out->size() > 1024) return Bad(std::string("\"") + key + "\" is too long");
  return Status::Ok();
}

// A string field that is an identifier (docs/identifiers.md): checked at the
// door, refused without echoing it, counted per field.
Status ReadId(const json& j, const char* key, IdKind kind, std::string* out,
              bool required = false) {
  FG_RETURN_IF_ERROR(ReadString(j, key, out, required));
  if (out->empty()) return Status::Ok();
  if (Status s = CheckIdentifier(kind, key, *out); !s.ok()) {
    CountBadIdentifier("admission", key);
    out->clear();
    return s;
  }
  return Status::Ok();
}

Status ReadNumber(const json& j, const char* key, const std::string& where, double lo, double hi, bool required,
                  double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Bad("missing \"" + where + key + "\"") : Status::Ok();
  }
  if (!it->is_number()) return Bad("\"" + where + key + "\" must be a number");
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Bad("\"" + where + key + "\" out of range [" + json(lo).dump() + ", " + json(hi).dump() + "]");
  }
  *out = v;
  return Status::Ok();
}

template <typename T>
Status ReadInteger(const json& j, const char* key, const std::string& where, T lo, T hi, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return Bad("\"" + where + key + "\" must be an integer");
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(hi)) return Bad("\"" + where + key + "\" out of range");
    *out = static_cast<T>(v);
  } else {
    int64_t v = it->get<int64_t>();
    if (v < static_cast<int64_t>(lo) || (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(hi))) {
      return Bad("\"" + where + key + "\" out of range");
    }
    *out = static_cast<T>(v);
  }
  return Status::Ok();
}

}  // namespace

Result<AdmissionRequest> ParseAdmissionRequest(std::string_view body) {
  if (body.size() > kMaxAdmissionBody) return Bad("body larger than " + std::to_string(kMaxAdmissionBody) + " bytes");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("body is not valid JSON");
  if (!j.is_object()) return Bad("body must be a JSON object");
  AdmissionRequest r;
  FG_RETURN_IF_ERROR(ReadId(j, "device", IdKind::kDeviceId, &r.device, true));
  if (r.device.empty()) return Bad("\"device\" is empty");
  FG_RETURN_IF_ERROR(ReadId(j, "session", IdKind::kToken, &r.session));
  FG_RETURN_IF_ERROR(ReadId(j, "cert_fp", IdKind::kToken, &r.cert_fp));
  FG_RETURN_IF_ERROR(ReadId(j, "serial", IdKind::kToken, &r.serial));
  FG_RETURN_IF_ERROR(ReadId(j, "src_ip", IdKind::kAddress, &r.src_ip));
  FG_RETURN_IF_ERROR(ReadId(j, "endpoint", IdKind::kEndpoint, &r.endpoint));
  FG_RETURN_IF_ERROR(ReadId(j, "segw", IdKind::kToken, &r.segw));
  if (auto it = j.find("gnss"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("\"gnss\" must be an object {lat, lon, acc_m}");
    GnssFix fix;
    FG_RETURN_IF_ERROR(ReadNumber(*it, "lat", "gnss.", -90, 90, true, &fix.lat));
    FG_RETURN_IF_ERROR(ReadNumber(*it, "lon", "gnss.", -180, 180, true, &fix.lon));
    FG_RETURN_IF_ERROR(ReadNumber(*it, "acc_m", "gnss.", 0, 1e7, false, &fix.acc_m));
    r.gnss = fix;
  }
  if (auto it = j.find("rem"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Bad("\"rem\" must be a list of cells");
    if (it->size() > kMaxRemCells) return Bad("\"rem\" has more than " + std::to_string(kMaxRemCells) + " cells");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& c = (*it)[i];
      std::string where = "rem[" + std::to_string(i) + "].";
      if (!c.is_object()) return Bad("\"rem[" + std::to_string(i) + "]\" must be an object");
      RemCell cell;
      // Bounds: common/rem_cell.h, the same as ingest's rem.scan cells.
      FG_RETURN_IF_ERROR(ReadInteger(c, "mcc", where, 0, rem::kMccMax, &cell.mcc));
      FG_RETURN_IF_ERROR(ReadInteger(c, "mnc", where, 0, rem::kMncMax, &cell.mnc));
      FG_RETURN_IF_ERROR(ReadInteger<uint32_t>(c, "tac", where, 0, std::numeric_limits<uint32_t>::max(), &cell.tac));
      FG_RETURN_IF_ERROR(ReadInteger<uint64_t>(c, "eci", where, 0, rem::kEciLimit - 1, &cell.eci));
      FG_RETURN_IF_ERROR(ReadInteger(c, "pci", where, rem::kPciMin, rem::kPciMax, &cell.pci));
      FG_RETURN_IF_ERROR(ReadInteger(c, "earfcn", where, rem::kEarfcnMin, rem::kEarfcnMax, &cell.earfcn));
      FG_RETURN_IF_ERROR(ReadNumber(c, "rsrp", where, rem::kRsrpMin, rem::kRsrpMax, false, &cell.rsrp));
      r.rem.push_back(cell);
    }
  }
  return r;
}

std::string DecisionToJson(const Decision& d) {
  json out = json::object();
  out["decision"] = VerdictName(d.verdict);
  out["reasons"] = d.reasons;
  json ev = json::object();
  for (const auto& [k, v] : d.evidence) ev[k] = v;
  out["evidence"] = std::move(ev);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string HandleAdmissionJson(Gate& gate, std::string_view body, int* http_status) {
  auto request = ParseAdmissionRequest(body);
  if (!request.ok()) {
    Metrics::Global()
        .GetCounter("femtoguard_admission_api_bad_requests_total", {}, "Malformed POST /v1/admission bodies")
        .Inc();
    *http_status = 400;
    return json{{"error", request.status().message()}}.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  request->now_ms = 0;  // the API always decides at wall-clock time
  Decision d = gate.Admit(*request);
  *http_status = 200;
  return DecisionToJson(d);
}

}  // namespace fg::admission
