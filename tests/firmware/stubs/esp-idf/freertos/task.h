/* vTaskDelay is where a device program waits; the stub uses each wait to deliver the
   next scripted inbound message (STUB_INBOUND="topic|payload;;topic|payload") and ends
   the program with exit(0) after STUB_TICKS waits, so `while (1)` loops terminate. */
#pragma once
#include "freertos/FreeRTOS.h"
#include "mqtt_client.h"
#include <stdlib.h>
#include <string.h>

static inline void vTaskDelay(TickType_t ticks) {
    static int waits;
    static const char *next;
    (void)ticks;
    if (waits++ == 0) next = getenv("STUB_INBOUND");
    if (next != NULL && *next) {
        const char *end = strstr(next, ";;");
        size_t length = end ? (size_t)(end - next) : strlen(next);
        const char *bar = memchr(next, '|', length);
        if (bar != NULL) stub_deliver(next, (int)(bar - next), bar + 1, (int)(next + length - bar - 1));
        next = end ? end + 2 : next + length;
    }
    const char *limit = getenv("STUB_TICKS");
    if (waits >= (limit ? atoi(limit) : 50)) {
        fflush(stdout);
        exit(0);
    }
}
