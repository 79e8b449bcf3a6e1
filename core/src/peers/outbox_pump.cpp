#include "peers/outbox_pump.hpp"
#include "error_text.hpp"

#include <spdlog/spdlog.h>

#include "peers/protocol.hpp"

namespace thrum::core::peers {

OutboxPump::OutboxPump(std::string peer, EventLoop& loop, store::Outbox& outbox,
                       std::function<void(int64_t)> on_delivered)
    : peer_(std::move(peer)),
      loop_(loop),
      outbox_(outbox),
      on_delivered_(std::move(on_delivered)) {}

OutboxPump::~OutboxPump() {
  *alive_ = false;
}

void OutboxPump::link_up(std::shared_ptr<Link> link) {
  link_ = std::move(link);
  ++generation_;
  inflight_ = 0;
  cursor_ = 0;
  kick();
}

void OutboxPump::link_down() {
  link_.reset();
  ++generation_;
  inflight_ = 0;
  cursor_ = 0;
  backlog_ = true;
}

void OutboxPump::kick() {
  backlog_ = true;
  schedule();
}

void OutboxPump::schedule() {
  if (posted_) return;
  posted_ = true;
  loop_.post([this, alive = alive_] {
    if (*alive) pump_now();
  });
}

void OutboxPump::pump_now() {
  posted_ = false;
  if (!link_ || !link_->is_open()) return;
  while (backlog_ && inflight_ < 1) {
    std::string kind;
    std::string items;  // the rows' params, comma-separated
    std::vector<store::OutboxRow> rows;
    std::vector<store::OutboxRow> too_large;
    size_t bytes = 0;
    bool more = false;  // rows past this frame are known to wait
    auto page = outbox_.page(peer_, cursor_, kMaxRows);
    for (auto& row : page) {
      if (!rows.empty() && (row.kind != kind || bytes + row.wire.size() > kMaxBatchBytes)) {
        more = true;
        break;
      }
      cursor_ = row.id;
      if (row.wire.size() > kMaxRowBytes) {
        spdlog::error(
            "peer delivery failed peer={} message={} reason=\"encodes to {} bytes, over the link "
            "frame limit\"",
            peer_, row.message_id, row.wire.size());
        too_large.push_back(std::move(row));
        continue;
      }
      kind = row.kind;
      bytes += row.wire.size();
      if (!items.empty()) items += ',';
      items += row.wire;
      rows.push_back(std::move(row));
    }
    // A full page may have more behind it.
    backlog_ = more || static_cast<int64_t>(page.size()) == kMaxRows;
    if (!too_large.empty()) {
      std::vector<DeliverOutcome> failed(too_large.size());
      for (auto& f : failed)
        f.refused = "too large to cross a peer link (over " + std::to_string(kMaxRowBytes) +
                    " bytes once encoded)";
      settle(too_large, failed);
    }
    if (rows.empty()) {
      if (backlog_) continue;
      return;
    }
    send(kind, items, std::move(rows));
  }
}

void OutboxPump::send(const std::string& kind, const std::string& items,
                      std::vector<store::OutboxRow> rows) {
  ++inflight_;
  const uint64_t gen = generation_;
  const std::string method = kind == "receipt" ? "peer.receipt" : "peer.deliver";
  link_->call_text(method, "{\"items\":[" + items + "]}",
                   [this, alive = alive_, gen, rows = std::move(rows)](rpc::Outcome o) {
                     if (*alive) answered(gen, rows, std::move(o));
                   });
}

void OutboxPump::answered(uint64_t generation, const std::vector<store::OutboxRow>& rows,
                          rpc::Outcome o) {
  if (generation != generation_) return;  // resent on the next link
  --inflight_;
  std::string problem;
  std::vector<DeliverOutcome> outcomes;
  if (!o.ok()) {
    problem = o.error().message;
  } else if (rows.front().kind == "receipt") {
    if (receipt_answer_ok(o.result(), rows.size()))
      outcomes.resize(rows.size());
    else
      problem = "malformed receipt answer";
  } else if (auto d = decode_deliver_answer(o.result(), rows.size())) {
    outcomes = std::move(d).value();
  } else {
    problem = "malformed answer: " + d.error();
  }
  if (!problem.empty()) {
    // The link is going away (its close resets the cursor) or the peer failed to store: the
    // rows wait for the next link.
    spdlog::debug("peer delivery not acknowledged peer={} rows={} error=\"{}\"", peer_, rows.size(),
                  problem);
  } else {
    settle(rows, outcomes);
  }
  // What committed while the frame was out leaves now, together.
  if (backlog_) schedule();
}

void OutboxPump::settle(const std::vector<store::OutboxRow>& rows,
                        const std::vector<DeliverOutcome>& outcomes) {
  std::vector<store::Settlement> acks;
  acks.reserve(rows.size());
  int64_t delivered = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    store::Settlement a{rows[i].id,          rows[i].kind == "deliver",
                        rows[i].message_id,  outcomes[i].message_id,
                        outcomes[i].refused, rows[i].queued};
    if (!a.refused.empty())
      spdlog::warn("peer refused message peer={} message={} reason=\"{}\"", peer_, a.message_id,
                   a.refused);
    if (a.deliver) ++delivered;
    acks.push_back(std::move(a));
  }
  outbox_.settle(peer_, std::move(acks), [](std::exception_ptr err) {
    if (err) spdlog::error("outbox ack failed error=\"{}\"", describe(err));
  });
  if (on_delivered_) on_delivered_(delivered);
}

}  // namespace thrum::core::peers
