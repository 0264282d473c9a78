/* esp-aws-iot's network_transport.h (esp-tls), the fields demos set. */
#pragma once
#include <stddef.h>
typedef struct NetworkContext {
    const char *pcHostname;
    int xPort;
    const char *pcServerRootCA;
    size_t pcServerRootCASize;
} NetworkContext_t;
