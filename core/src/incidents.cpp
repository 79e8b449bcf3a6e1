#include "thrum/core/incidents.hpp"

namespace thrum::core {

std::string_view incident_name(Incident kind) {
  switch (kind) {
    case Incident::kHandlerException:
      return "handler_exceptions";
    case Incident::kPeerLinkException:
      return "peer_link_exceptions";
    case Incident::kAcceptError:
      return "accept_errors";
    case Incident::kEventLoopException:
      return "event_loop_exceptions";
    case Incident::kConnectionRefused:
      return "connections_refused";
    case Incident::kCount_:
      break;
  }
  return "unknown";
}

Incidents& Incidents::global() {
  static Incidents instance;
  return instance;
}

}  // namespace thrum::core
