// The plugin descriptor: the one exported symbol of libthrum_transport_local.so.
#include "thrum/sdk/plugin.hpp"
#include "local_transport.hpp"

THRUM_TRANSPORT_PLUGIN(thrum::transport::local::LocalTransport, "local", "0.1.0");
