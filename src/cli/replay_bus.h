#pragma once

// femtoguard replay over the JetStream event stream (docs/stream.md,
// "Distributed replay"): the log is published to a stream of its own,
// partitioned as serve's, and worked on by N worker processes (here or on
// other machines: `replay --join RUN`) that take partition leases as nodes
// do. The union of their alerts is the single-process replay's.

#include <string>

namespace fg::cli {

struct ReplayOptions {
  std::string registry;
  std::string cells;
  std::string events;
  std::string alerts;
  std::string rules;
  std::string data;
  std::string bus;      // nats://... (distributed)
  int workers = 0;      // with bus: worker processes started here (0: none, --join them)
  int partitions = 16;
  int replicas = 1;     // the run's streams (a run can be repeated: R1 is enough)
  std::string join;     // worker mode: the run to work on
  int expect_workers = 1;  // worker mode: how many workers share the run
  std::string run;      // leader: the run id (default: random)
  bool keep = false;    // leader: keep the run's streams afterwards
};

// Leader: publishes the events, starts the workers, merges their alerts.
int RunBusReplay(const ReplayOptions& o);
// Worker: works on partitions of run o.join until every one is done.
int RunBusWorker(const ReplayOptions& o);

}  // namespace fg::cli
