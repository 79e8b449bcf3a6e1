// The plugin descriptor: the one exported symbol of libthrum_transport_tailscale.so.
#include "thrum/sdk/plugin.hpp"
#include "tailscale_transport.hpp"

THRUM_TRANSPORT_PLUGIN(thrum::transport::tailscale::TailscaleTransport, "tailscale", "0.1.0");
