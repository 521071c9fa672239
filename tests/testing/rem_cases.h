#pragma once

// One table of REM cell values, asserted by admission (POST /v1/admission
// `rem[]`, tests/admission/rem_bounds_test.cc) and by ingest (rem.scan
// `cells[]`, tests/detect/rem_bounds_test.cc): both accept or refuse each as
// written here (common/rem_cell.h; their bounds used to differ: rsrp 10 was
// a valid scan for detection and a bad request for admission).

#include <vector>

namespace fg::testing {

struct RemCellCase {
  const char* cell;  // JSON object
  bool ok;
};

inline std::vector<RemCellCase> RemCellCases() {
  return {
      {R"({"mcc":450,"mnc":8,"tac":1,"eci":1,"pci":1,"earfcn":1850,"rsrp":-90})", true},
      {R"({"rsrp":0})", true},
      {R"({"rsrp":-200})", true},
      {R"({"rsrp":10})", false},
      {R"({"rsrp":-200.5})", false},
      {R"({"pci":1007})", true},
      {R"({"pci":-1})", true},
      {R"({"pci":1008})", false},
      {R"({"earfcn":3279165})", true},
      {R"({"earfcn":3279166})", false},
      {R"({"eci":68719476735})", true},
      {R"({"eci":68719476736})", false},
      {R"({"mcc":1000})", false},
      {R"({"mnc":1000})", false},
  };
}

}  // namespace fg::testing
