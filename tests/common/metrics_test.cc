// Metrics: counters, gauges and latency histograms as Prometheus text.

#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

namespace fg {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Metrics m;
  Histogram& h = m.GetHistogram("femtoguard_test_seconds", {}, "Test latency");
  h.Observe(0.0002);  // <= 0.00025
  h.Observe(0.003);   // <= 0.005
  h.Observe(0.003);
  h.Observe(42);      // only +Inf
  const std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# HELP femtoguard_test_seconds Test latency\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE femtoguard_test_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"0.0001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"0.00025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"0.0025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"0.005\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"10\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_bucket{le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_count 4\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_test_seconds_sum 42.0062\n"));
}

TEST(MetricsTest, ABoundaryValueFallsInItsOwnBucketAndNegativeOrNanCountAsZero) {
  Metrics m;
  Histogram& h = m.GetHistogram("femtoguard_edge_seconds");
  h.Observe(0.001);  // le is "less than or equal"
  h.Observe(-3);
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.CumulativeCount(2), 2u);  // le 0.0005: the two zeros
  EXPECT_EQ(h.CumulativeCount(3), 3u);  // le 0.001
  EXPECT_EQ(h.Sum(), 0.001);
}

TEST(MetricsTest, LabelledHistogramsKeepTheirLabelsBeforeLe) {
  Metrics m;
  m.GetHistogram("femtoguard_lab_seconds", "route=\"a\"").Observe(0.01);
  m.GetHistogram("femtoguard_lab_seconds", "route=\"b\"").Observe(0.02);
  const std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("femtoguard_lab_seconds_bucket{route=\"a\",le=\"0.01\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_lab_seconds_bucket{route=\"b\",le=\"0.01\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("femtoguard_lab_seconds_count{route=\"b\"} 1\n"));
  // One TYPE line per metric name, not per series.
  size_t first = text.find("# TYPE femtoguard_lab_seconds");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("# TYPE femtoguard_lab_seconds", first + 1), std::string::npos);
  // The same name and labels give the same histogram.
  EXPECT_EQ(&m.GetHistogram("femtoguard_lab_seconds", "route=\"a\""),
            &m.GetHistogram("femtoguard_lab_seconds", "route=\"a\""));
}

TEST(MetricsTest, ConcurrentObservationsAreAllCounted) {
  Metrics m;
  Histogram& h = m.GetHistogram("femtoguard_conc_seconds");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(0.001 * (i % 7));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.Count(), 40000u);
  EXPECT_EQ(h.CumulativeCount(Histogram::kBuckets), 40000u);
}

TEST(MetricsTest, ScopedTimerObservesOnce) {
  Metrics m;
  Histogram& h = m.GetHistogram("femtoguard_timer_seconds");
  { ScopedTimer t(h); }
  EXPECT_EQ(h.Count(), 1u);
  EXPECT_THAT(m.RenderPrometheus(), Not(HasSubstr("nan")));
}

}  // namespace
}  // namespace fg
