// What the issue-18 instrumentation costs on the hot paths (admission, OCSP,
// payment check): a latency histogram observation and a ScopedTimer (two
// steady_clock reads and an observation), against a counter increment, the
// baseline that every such path already paid, measured in the same run; and
// the SIEM export's per-alert formatting (RFC 5424 + ECS JSON) against the
// alert's own JSON parse, which the webhook path already does.
//
//   build/bench/metrics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "response/siem.h"

namespace {

const char kAlert[] =
    R"({"id":"3f2a9c1e0b7d4a55","ts":"2026-03-01T10:00:00.250Z","rule":"cert.clone","kind":"clone",)"
    R"("severity":"critical","device":"FG-0001","subjects":["imsi:00ff11aa22bb33cc"],)"
    R"("actions":["terminate","block","notify"],"approve":["revoke"],)"
    R"("evidence":{"sessions":2,"src_ips":["10.0.0.1","10.0.0.2"],"endpoints":["segw1:500"]}})";

void BM_CounterInc(benchmark::State& state) {
  static fg::Counter& c = fg::Metrics::Global().GetCounter("femtoguard_bench_total");
  for (auto _ : state) c.Inc();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  static fg::Histogram& h = fg::Metrics::Global().GetHistogram("femtoguard_bench_seconds");
  double v = 0.0003;
  for (auto _ : state) {
    h.Observe(v);
    v = v < 1 ? v * 1.7 : 0.0003;  // walk the buckets
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_ScopedTimer(benchmark::State& state) {
  static fg::Histogram& h = fg::Metrics::Global().GetHistogram("femtoguard_bench_timer_seconds");
  for (auto _ : state) {
    fg::ScopedTimer t(h);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScopedTimer)->Threads(1)->Threads(2);

void BM_AlertJsonParse(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann::json::parse(kAlert));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AlertJsonParse);

void BM_SiemSyslogMessage(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(fg::response::SyslogAlertMessage(kAlert, "fg-node-1"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SiemSyslogMessage);

void BM_RenderPrometheus(benchmark::State& state) {
  // A scrape with the four histograms and a few hundred series.
  fg::Metrics m;
  for (const char* n : {"femtoguard_a_seconds", "femtoguard_b_seconds", "femtoguard_c_seconds", "femtoguard_d_seconds"}) {
    m.GetHistogram(n).Observe(0.01);
  }
  for (int i = 0; i < 300; ++i) m.GetCounter("femtoguard_x_total", "i=\"" + std::to_string(i) + "\"").Inc();
  for (auto _ : state) benchmark::DoNotOptimize(m.RenderPrometheus());
}
BENCHMARK(BM_RenderPrometheus);

}  // namespace

BENCHMARK_MAIN();
