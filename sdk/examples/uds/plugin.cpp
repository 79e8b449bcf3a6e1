// The descriptor: the only symbol this library exports.
#include "thrum/sdk/plugin.hpp"
#include "uds_transport.hpp"

THRUM_TRANSPORT_PLUGIN(thrum::transport::uds::UdsTransport, "uds", "1.0.0");
