#pragma once
/* The stub's esp-mqtt layout follows -DESP_IDF_V4, and so does the version it reports. */
#ifdef ESP_IDF_V4
#define ESP_IDF_VERSION_MAJOR 4
#else
#define ESP_IDF_VERSION_MAJOR 5
#endif
