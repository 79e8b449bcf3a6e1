// The Messaging facade: owns the units and forwards to them.
#include "thrum/core/messaging.hpp"

#include "messaging/agent_directory.hpp"
#include "messaging/inbox.hpp"
#include "messaging/message_service.hpp"
#include "messaging/subscriptions.hpp"
#include "messaging/waiters.hpp"

namespace thrum::core {

using json = nlohmann::json;

Messaging::Messaging(Options opts, Store& store, EventLoop& loop)
    : opts_(std::move(opts)), store_(store), loop_(loop) {
  agents_ = std::make_unique<messaging::AgentDirectory>(store_, opts_.paths);
  waiters_ = std::make_unique<messaging::Waiters>(loop_, store_);
  service_ = std::make_unique<messaging::MessageService>(store_, *agents_, *waiters_, router_,
                                                         opts_.max_body_bytes);
  inbox_ = std::make_unique<messaging::Inbox>(store_, router_);
  subscriptions_ = std::make_unique<messaging::Subscriptions>([this](const StoredMessage& m) {
    json j = messaging::Inbox::message_json(m);
    j["recipients"] = inbox_->recipient_states(m.message_id);
    return j;
  });
  service_->on_message([this](const StoredMessage& m) { subscriptions_->announce(m); });
}

Messaging::~Messaging() = default;

const std::map<std::string, Agent>& Messaging::agents() const {
  return agents_->agents();
}

void Messaging::on_message(MessageObserver fn) {
  service_->on_message(std::move(fn));
}

std::string Messaging::check_agent_name(const std::string& name) {
  return messaging::AgentDirectory::check_name(name);
}

json Messaging::notification_params(const StoredMessage& m) {
  json j = json::object();  // member by member: an initializer list copies every value
  j["message_id"] = m.message_id;
  j["author"]["agent_id"] = m.author_id;
  j["recipients"] = m.recipients;
  j["preview"] = messaging::preview(m.body);
  j["audience"] = m.audience;
  j["timestamp"] = m.created_at;
  j["thread_id"] = m.thread_id ? json(*m.thread_id) : json(nullptr);
  j["reply_to"] = m.reply_to ? json(*m.reply_to) : json(nullptr);
  return j;
}

void Messaging::apply_inbound(const std::vector<InboundMessage>& batch,
                              std::function<void(std::vector<InboundResult>)> done) {
  service_->apply_inbound(batch, std::move(done));
}

void Messaging::add_proxy(const std::string& peer, const std::string& prefix,
                          const std::string& remote_name, std::function<void(std::string)> done) {
  agents_->add_proxy(peer, prefix, remote_name, std::move(done));
}

void Messaging::remove_proxies(const std::string& peer, const std::string& proxy_id,
                               std::function<void(std::string)> done) {
  agents_->remove_proxies(peer, proxy_id, std::move(done));
}

void Messaging::rename_proxies(const std::string& peer, const std::string& old_prefix,
                               const std::string& new_prefix,
                               std::function<void(std::string)> done) {
  agents_->rename_proxies(peer, old_prefix, new_prefix, std::move(done));
}

}  // namespace thrum::core
