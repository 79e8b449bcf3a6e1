#pragma once
/// @file
/// Thrum's writer of compact JSON text: the engine behind dump_compact() and append_compact()
/// (thrum/common/bounded_json.hpp).
///
/// Why not nlohmann's dump(): it escapes a string through a per-byte UTF-8 state machine and
/// allocates an output adapter per call; on the message path (a send's wire payload and its
/// answer, every response envelope) that was ~25 k instructions per message on the sender
/// (docs/benchmarks.md). This writer appends runs of plain bytes at once.
///
/// Contract, held by tests/unit/core/json_text_test.cpp and the `json_differential` fuzz
/// target: the bytes are exactly those of `j.dump(-1, ' ', false, error_handler_t::replace)`
/// for every value. A string that is not valid UTF-8, a double and a binary value are handed
/// to nlohmann as they are (its replacement of invalid bytes and its shortest double format
/// are kept, not re-implemented).

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace thrum::core::json_writer {

void append(std::string& out, const nlohmann::json& j);
/// `s` as a JSON string literal (the bytes nlohmann's dump writes for json(s)).
void append_string(std::string& out, std::string_view s);

}  // namespace thrum::core::json_writer
