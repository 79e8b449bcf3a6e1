#include "store/outbox.hpp"

#include <nlohmann/json.hpp>

#include "thrum/common/bounded_json.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::store {

using json = nlohmann::json;

std::string Outbox::encode(const std::string& wire, const std::vector<std::string>& queued) {
  return wire + "\n" + dump_compact(json(queued));
}

OutboxRow Outbox::decode(int64_t id, std::string kind, std::string message_id,
                         std::string payload) {
  OutboxRow row{id, std::move(kind), std::move(message_id), std::move(payload), {}};
  json queued = json::array();
  if (auto nl = row.wire.find('\n'); nl != std::string::npos) {
    queued = parse_bounded(std::string_view(row.wire).substr(nl + 1)).value_or(json::array());
    row.wire.resize(nl);
  } else if (row.kind == "deliver") {
    json old = parse_bounded(row.wire).value_or(json::object());
    if (!old.is_object()) old = json::object();
    if (auto qr = old.find("queued_recipients"); qr != old.end()) {
      queued = std::move(*qr);
      old.erase(qr);
    }
    row.wire = dump_compact(old);
  }
  if (queued.is_array())
    for (const auto& r : queued)
      if (r.is_string()) row.queued.push_back(r.get<std::string>());
  return row;
}

std::vector<OutboxRow> Outbox::page(const std::string& peer, int64_t after_id, int64_t limit) {
  std::vector<OutboxRow> out;
  auto q = store_.reader().cached(
      "SELECT id, kind, message_id, payload FROM outbox WHERE peer=?1 AND id>?2 ORDER BY id "
      "LIMIT ?3");
  q.bind(1, peer).bind(2, after_id).bind(3, limit);
  while (q.step()) out.push_back(decode(q.integer(0), q.text(1), q.text(2), q.text(3)));
  return out;
}

void Outbox::settle(const std::string& peer, std::vector<Settlement> rows, Done done) {
  const std::string now = now_rfc3339();
  store_.write(
      [peer, rows = std::move(rows), now](sql::Db& db) {
        for (const auto& a : rows) {
          db.cached("DELETE FROM outbox WHERE id=?1").bind(1, a.row_id).run();
          if (!a.deliver) continue;
          for (const auto& r : a.recipients) {
            // The peer's id goes on the row it answered for, in the UPDATE that marks it
            // delivered: the same page, so threading costs the disk nothing (schema v3).
            if (a.refused.empty())
              db.cached(
                    "UPDATE deliveries SET delivered_at=?1, peer=?4, remote_id=?5 WHERE "
                    "message_id=?2 AND recipient_id=?3")
                  .bind(1, now)
                  .bind(2, a.message_id)
                  .bind(3, r)
                  .bind(4, peer)
                  .bind(5, a.remote_id.empty() ? std::optional<std::string>()
                                               : std::optional<std::string>(a.remote_id))
                  .run();
            else
              db.cached("UPDATE deliveries SET failed=?1 WHERE message_id=?2 AND recipient_id=?3")
                  .bind(1, a.refused)
                  .bind(2, a.message_id)
                  .bind(3, r)
                  .run();
          }
        }
      },
      std::move(done), Store::Durability::kDeferred);
}

int64_t Outbox::queued(const std::string& peer) {
  auto q = store_.reader().cached("SELECT count(*) FROM outbox WHERE peer=?1 AND kind='deliver'");
  q.bind(1, peer);
  q.step();
  return q.integer(0);
}

void Outbox::drop(const std::string& peer, const std::string& prefix,
                  std::function<void(int64_t, std::exception_ptr)> done) {
  auto dropped = std::make_shared<int64_t>(0);
  store_.write(
      [peer, prefix, dropped](sql::Db& db) {
        auto c = db.cached("SELECT count(*) FROM outbox WHERE peer=?1 AND kind='deliver'");
        c.bind(1, peer);
        if (c.step()) *dropped = c.integer(0);
        db.cached("DELETE FROM outbox WHERE peer=?1").bind(1, peer).run();
        // What tied our messages to its ids goes too, as the message map did: a peer paired
        // again later under this name is a new party, and its numbering starts afresh.
        db.cached("UPDATE deliveries SET remote_id=NULL WHERE peer=?1").bind(1, peer).run();
        db.cached("UPDATE messages SET origin_peer=NULL WHERE origin_peer=?1").bind(1, peer).run();
        db.cached(
              "UPDATE deliveries SET failed='peer removed' WHERE delivered_at IS NULL AND "
              "failed IS NULL AND substr(recipient_id, 1, length(?1) + 1) = ?1 || ':'")
            .bind(1, prefix)
            .run();
      },
      [dropped, done = std::move(done)](std::exception_ptr err) { done(*dropped, err); });
}

void Outbox::queue_receipts(std::vector<ReceiptToSend> receipts, Done done) {
  store_.write(
      [receipts = std::move(receipts)](sql::Db& db) {
        for (const auto& r : receipts)
          db.cached(
                "INSERT INTO outbox(peer, kind, message_id, payload, created_at) "
                "VALUES(?1,'receipt',?2,?3,?4)")
              .bind(1, r.peer)
              .bind(2, r.remote_id)
              .bind(3,
                    dump_compact(json{
                        {"message_id", r.remote_id}, {"reader", r.reader}, {"read_at", r.read_at}}))
              .bind(4, r.read_at)
              .run();
      },
      std::move(done));
}

std::vector<std::pair<std::string, std::string>> Outbox::receipt_targets(
    const std::vector<std::string>& message_ids) {
  std::vector<std::pair<std::string, std::string>> out;
  auto q = store_.reader().cached(
      "SELECT origin_peer, origin_message_id FROM messages WHERE message_id=?1 AND origin_peer "
      "IS NOT NULL AND origin_message_id IS NOT NULL AND audience != 'broadcast:everyone'");
  for (const auto& id : message_ids) {
    q.reset();
    q.bind(1, id);
    if (q.step()) out.emplace_back(q.text(0), q.text(1));
  }
  return out;
}

void Outbox::apply_receipts(std::vector<ReceiptFromPeer> receipts, Done done) {
  store_.write(
      [receipts = std::move(receipts)](sql::Db& db) {
        for (const auto& r : receipts)
          db.cached(
                "UPDATE deliveries SET read_at=COALESCE(read_at, ?1) WHERE message_id=?2 AND "
                "recipient_id=?3")
              .bind(1, r.read_at)
              .bind(2, r.message_id)
              .bind(3, r.recipient)
              .run();
      },
      std::move(done));
}

std::optional<std::string> Outbox::remote_id(const std::string& peer, const std::string& local_id) {
  // Either the message came from that peer (its id there is the origin id), or we sent it
  // there and the peer's answer put its id on the delivery row.
  auto q = store_.reader().cached(
      "SELECT origin_message_id FROM messages WHERE message_id=?1 AND origin_peer=?2 AND "
      "origin_message_id IS NOT NULL "
      "UNION ALL SELECT remote_id FROM deliveries WHERE message_id=?1 AND peer=?2 AND "
      "remote_id IS NOT NULL LIMIT 1");
  q.bind(1, local_id).bind(2, peer);
  if (q.step()) return q.text(0);
  return std::nullopt;
}

void Outbox::insert(sql::Db& db, const std::string& peer, const std::string& kind,
                    const std::string& message_id, const std::string& payload,
                    const std::string& created_at) {
  db.cached(
        "INSERT INTO outbox(peer, kind, message_id, payload, created_at) VALUES(?1,?2,?3,?4,?5)")
      .bind(1, peer)
      .bind(2, kind)
      .bind(3, message_id)
      .bind(4, payload)
      .bind(5, created_at)
      .run();
}

}  // namespace thrum::core::store
