// The plugin descriptor: the one exported symbol of libthrum_transport_network.so.
#include "thrum/sdk/plugin.hpp"
#include "network_transport.hpp"

THRUM_TRANSPORT_PLUGIN(thrum::transport::network::NetworkTransport, "network", "0.1.0");
