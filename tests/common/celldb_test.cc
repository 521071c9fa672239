#include "common/celldb.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "testing/harness.h"

namespace fg {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kHeader =
    "radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n";

// Three cells in Seoul within a few hundred metres, one in Busan (~325 km away).
std::string SampleCsv() {
  return std::string(kHeader) +
         "LTE,450,8,4660,123456789,101,126.9780,37.5665,1000,12,1,1500000000,1600000000,0\n"
         "LTE,450,8,4660,123456790,102,126.9800,37.5670,800,7,1,1500000000,1600000000,-90\n"
         "NR,450,5,4661,9876543210,,126.9760,37.5650,,3,1,1500000000,1600000000,0\n"
         "LTE,450,8,9100,555000111,33,129.0756,35.1796,2000,40,1,1500000000,1600000000,0\n";
}

TEST(DistanceMetersTest, KnownDistances) {
  EXPECT_NEAR(DistanceMeters(37.5665, 126.9780, 37.5665, 126.9780), 0.0, 1e-6);
  // Seoul City Hall to Busan station: ~325 km great circle.
  double d = DistanceMeters(37.5665, 126.9780, 35.1150, 129.0422);
  EXPECT_GT(d, 320'000);
  EXPECT_LT(d, 330'000);
  // One degree of latitude is ~111.2 km.
  EXPECT_NEAR(DistanceMeters(0, 0, 1, 0), 111'195, 100);
}

TEST(CellDbTest, ParsesOpenCellIdLayout) {
  auto db = CellDb::Parse(SampleCsv());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_EQ(db->size(), 4u);
  const Cell& c = db->cells()[0];
  EXPECT_EQ(c.radio, "LTE");
  EXPECT_EQ(c.mcc, 450);
  EXPECT_EQ(c.mnc, 8);
  EXPECT_EQ(c.area, 4660u);
  EXPECT_EQ(c.cell, 123456789u);
  EXPECT_EQ(c.pci, 101);
  EXPECT_DOUBLE_EQ(c.lon, 126.9780);
  EXPECT_DOUBLE_EQ(c.lat, 37.5665);
  EXPECT_DOUBLE_EQ(c.range_m, 1000);
  // Empty unit and range are allowed (real dumps have them): PCI -1, range 0.
  EXPECT_EQ(db->cells()[2].pci, -1);
  EXPECT_EQ(db->cells()[2].range_m, 0);
  EXPECT_EQ(db->cells()[2].cell, 9876543210u);
}

TEST(CellDbTest, AcceptsCrlfBomAndBlankLines) {
  std::string csv = "\xEF\xBB\xBF" + std::string(kHeader);
  csv.insert(csv.size() - 1, "\r");
  csv += "LTE,450,8,1,2,3,126.0,37.0,10,1,1,0,0,0\r\n\n";
  auto db = CellDb::Parse(csv);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(db->size(), 1u);
}

TEST(CellDbTest, HeaderOnlyIsAnEmptyDatabase) {
  auto db = CellDb::Parse(kHeader);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->size(), 0u);
  EXPECT_TRUE(db->Near(37.5, 127.0, 10'000).empty());
  EXPECT_EQ(db->FindByEci(1), nullptr);
}

TEST(CellDbTest, HeaderlessCountryDumpLoads) {
  // OpenCellID's per-country exports have no header line.
  auto db = CellDb::Parse("LTE,450,8,1,2,3,126.0,37.0,10,1,1,0,0,0\nGSM,450,5,7,8,,126.5,37.5,500,1,1,0,0,0\n");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_EQ(db->size(), 2u);
  EXPECT_EQ(db->cells()[0].cell, 2u);
  EXPECT_EQ(db->cells()[1].radio, "GSM");
}

TEST(CellDbTest, RejectsAFirstLineThatIsNeitherHeaderNorCell) {
  auto empty = CellDb::Parse("");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("header"));
  auto reordered = CellDb::Parse(
      "mcc,radio,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal\n");
  ASSERT_FALSE(reordered.ok());
  EXPECT_THAT(reordered.status().message(), HasSubstr("line 1"));
  EXPECT_THAT(reordered.status().message(), HasSubstr("header"));
  // A bad first cell of a headerless file says both what was expected and
  // what is wrong with it.
  auto bad = CellDb::Parse("LTE,abc,8,1,2,3,126.0,37.0,10,1,1,0,0,0\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("mcc"));
}

// Load streams plain and gzip files alike, with the same result as Parse,
// and reports progress; a truncated gzip file is an error, not a short database.
TEST(CellDbTest, LoadsPlainAndGzipExportsStreamed) {
  fg::testing::TempDir tmp;
  std::string csv;
  for (int i = 0; i < 2500; ++i) {
    csv += "LTE,450,8," + std::to_string(i % 7) + "," + std::to_string(100000 + i) + "," + std::to_string(i % 504) +
           ",127.0" + std::to_string(i % 10) + ",37.5" + std::to_string(i % 10) + ",1000,1,1,0,0,0\n";
  }
  fg::testing::WriteAll(tmp / "dump.csv", csv);
  auto gz = fg::testing::Run({"gzip", "-k", tmp / "dump.csv"});
  ASSERT_EQ(gz.exit_code, 0) << gz.out;
  auto plain = CellDb::Load(tmp / "dump.csv");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  uint64_t last_rows = 0, calls = 0;
  auto zipped = CellDb::Load(tmp / "dump.csv.gz", [&](uint64_t rows, uint64_t, uint64_t) {
    last_rows = rows;
    ++calls;
  });
  ASSERT_TRUE(zipped.ok()) << zipped.status().ToString();
  EXPECT_EQ(plain->size(), 2500u);
  EXPECT_EQ(zipped->size(), 2500u);
  EXPECT_EQ(last_rows, 2500u);
  EXPECT_GE(calls, 1u);
  for (size_t i = 0; i < 2500; i += 499) {
    EXPECT_EQ(plain->cells()[i].cell, zipped->cells()[i].cell);
    EXPECT_DOUBLE_EQ(plain->cells()[i].lat, zipped->cells()[i].lat);
  }
  ASSERT_NE(zipped->FindByEci(100042), nullptr);

  std::string whole = fg::testing::ReadAll(tmp / "dump.csv.gz");
  fg::testing::WriteAll(tmp / "cut.csv.gz", whole.substr(0, whole.size() / 2));
  auto cut = CellDb::Load(tmp / "cut.csv.gz");
  EXPECT_FALSE(cut.ok());
  auto missing = CellDb::Load(tmp / "nope.csv.gz");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.csv.gz"));
}

TEST(CellDbTest, MalformedLinesNameTheirLineNumberAndField) {
  struct Case {
    std::string line;
    std::string field;
  } cases[] = {
      {"LTE,450,8,1,2,3,126.0,37.0,10,1,1,0,0", "14 columns"},
      {"LTE,450,8,1,2,3,126.0,37.0,10,1,1,0,0,0,extra", "more than 14"},
      {"LTE,abc,8,1,2,3,126.0,37.0,10,1,1,0,0,0", "mcc"},
      {"LTE,450,x,1,2,3,126.0,37.0,10,1,1,0,0,0", "net"},
      {"LTE,450,8,-1,2,3,126.0,37.0,10,1,1,0,0,0", "area"},
      {"LTE,450,8,1,2.5,3,126.0,37.0,10,1,1,0,0,0", "cell"},
      {"LTE,450,8,1,2,-3,126.0,37.0,10,1,1,0,0,0", "unit"},
      {"LTE,450,8,1,2,3,190.0,37.0,10,1,1,0,0,0", "lon"},
      {"LTE,450,8,1,2,3,126.0,91,10,1,1,0,0,0", "lat"},
      {"LTE,450,8,1,2,3,126.0,nan,10,1,1,0,0,0", "lat"},
      {"LTE,450,8,1,2,3,126.0,37.0,-5,1,1,0,0,0", "range"},
      {",450,8,1,2,3,126.0,37.0,10,1,1,0,0,0", "radio"},
  };
  for (const auto& c : cases) {
    std::string csv = std::string(kHeader) + "LTE,450,8,1,2,3,126.0,37.0,10,1,1,0,0,0\n" + c.line + "\n";
    auto db = CellDb::Parse(csv);
    ASSERT_FALSE(db.ok()) << c.line;
    EXPECT_THAT(db.status().message(), HasSubstr("line 3")) << c.line;
    EXPECT_THAT(db.status().message(), HasSubstr(c.field)) << c.line;
  }
}

TEST(CellDbTest, NearFindsCellsWithinRadiusOnly) {
  auto db = CellDb::Parse(SampleCsv());
  ASSERT_TRUE(db.ok());
  // Within 500 m of the first cell: the three Seoul cells, not Busan.
  EXPECT_THAT(db->Near(37.5665, 126.9780, 500), ElementsAre(0u, 1u, 2u));
  // 100 m: only the first (the second is ~185 m away, the third ~280 m).
  EXPECT_THAT(db->Near(37.5665, 126.9780, 100), ElementsAre(0u));
  EXPECT_THAT(db->Near(35.1796, 129.0756, 1000), ElementsAre(3u));
  // Nothing in the sea between.
  EXPECT_TRUE(db->Near(36.3, 128.0, 20'000).empty());
  // A radius wider than the grid still finds everything.
  EXPECT_EQ(db->Near(36.5, 128.0, 1'000'000).size(), 4u);
}

TEST(CellDbTest, NearMatchesBruteForceAcrossGridBoundaries) {
  // A 40x40 lattice of cells 250 m apart around a point; compare the grid
  // query with a brute-force scan for several centres and radii.
  std::string csv = kHeader;
  uint64_t eci = 1;
  for (int i = 0; i < 40; ++i) {
    for (int j = 0; j < 40; ++j) {
      double lat = 37.50 + i * 0.00225, lon = 127.00 + j * 0.00283;
      csv += "LTE,450,8,1," + std::to_string(eci++) + ",1," + std::to_string(lon) + "," + std::to_string(lat) +
             ",100,1,1,0,0,0\n";
    }
  }
  auto db = CellDb::Parse(csv);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (double radius : {0.0, 120.0, 900.0, 2500.0, 7000.0}) {
    for (auto [lat, lon] : {std::pair{37.5, 127.0}, {37.545, 127.05}, {37.59, 127.11}, {37.52, 127.2}}) {
      std::vector<uint32_t> brute;
      for (uint32_t k = 0; k < db->size(); ++k) {
        if (DistanceMeters(lat, lon, db->cells()[k].lat, db->cells()[k].lon) <= radius) brute.push_back(k);
      }
      EXPECT_EQ(db->Near(lat, lon, radius), brute) << lat << "," << lon << " r=" << radius;
    }
  }
}

TEST(CellDbTest, LooksUpByEciAndArea) {
  auto db = CellDb::Parse(SampleCsv());
  ASSERT_TRUE(db.ok());
  const Cell* c = db->FindByEci(555000111);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->area, 9100u);
  EXPECT_EQ(db->FindByEci(42), nullptr);
  const auto* area = db->CellsInArea(450, 8, 4660);
  ASSERT_NE(area, nullptr);
  EXPECT_THAT(*area, ElementsAre(0u, 1u));
  EXPECT_EQ(db->CellsInArea(450, 5, 4660), nullptr);
}

TEST(CellDbTest, LoadReadsAFileAndNamesItInErrors) {
  testing::TempDir tmp;
  testing::WriteAll(tmp / "cells.csv", SampleCsv());
  auto db = CellDb::Load(tmp / "cells.csv");
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(db->size(), 4u);
  testing::WriteAll(tmp / "bad.csv", std::string(kHeader) + "LTE,450\n");
  auto bad = CellDb::Load(tmp / "bad.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.csv"));
  EXPECT_THAT(bad.status().message(), HasSubstr("line 2"));
  EXPECT_FALSE(CellDb::Load(tmp / "missing.csv").ok());
}

}  // namespace
}  // namespace fg
