#pragma once
/// @file
/// Thrum's own reader of JSON text into a nlohmann::json value: the engine behind
/// parse_bounded() (thrum/common/bounded_json.hpp), which is the only caller.
///
/// Why not nlohmann's parser: on the message path every request line and every peer frame is
/// parsed once, and nlohmann's lexer (a virtual-free but per-character pipeline with a token
/// buffer, a separate depth pre-pass in front of it) cost ~40 k instructions for a 400-byte
/// frame, the largest single item after SQLite in the instructions per message
/// (docs/benchmarks.md). This reader walks the text once, bounds the depth as it goes, copies
/// runs of plain characters at once and parses straight into the value's own containers.
///
/// Contract, held by tests/unit/core/json_text_test.cpp and the `json_differential` fuzz
/// target: for every input and depth limit, it accepts exactly the texts nlohmann::json::parse
/// accepts (RFC 8259, strict UTF-8 per RFC 3629, a leading UTF-8 BOM skipped, no comments, no
/// trailing content) and builds the same value, number types included (a non-negative integer
/// is unsigned, a negative one signed, one that fits neither or has a fraction or exponent a
/// double; a double that overflows is refused, one that underflows is kept); a later
/// duplicate key replaces the earlier one. One deliberate difference: nlohmann takes a NUL
/// byte outside a string for the end of the input and silently ignores whatever follows it
/// (`{"a":1}\0{"b":2}` is `{"a":1}` to it); the reader refuses such text, so nothing can hide
/// behind a NUL. It never throws and recurses at most `max_depth` levels.

#include <string_view>

#include <nlohmann/json.hpp>

namespace thrum::core::json_reader {

enum class Result { kOk, kSyntax, kTooDeep };

/// Parses `text` into `out`. On kSyntax or kTooDeep `out` holds some partial value (callers
/// discard it). kTooDeep means an array or object opened past `max_depth` levels.
Result read(std::string_view text, int max_depth, nlohmann::json& out);

}  // namespace thrum::core::json_reader
