#pragma once

// Binary encoding of decoded, pseudonymized events for the bus. Ingest
// decodes JSON Lines once (pseudonymizing subscriber identities and wiping
// the raw text) and publishes batches in this form, so no raw identifier
// travels on the bus or waits in its queue.
//
// Layout (little-endian): "FGE1", u32 count, then per event the fields of
// detect::Event in declaration order; strings as u32 length + bytes, lists
// as u32 count + items. Decoding is strict and bounded: a truncated or
// inconsistent batch is an error and yields no event after the bad one.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "detect/event.h"

namespace fg::bus {

void AppendEvent(const detect::Event& e, std::string* batch);  // batch must start with BeginBatch
void BeginBatch(std::string* batch);
void FinishBatch(std::string* batch, uint32_t count);
// Calls `fn` for each event of the batch, reusing one Event.
Status ForEachEvent(std::string_view batch, const std::function<void(const detect::Event&)>& fn);

}  // namespace fg::bus
