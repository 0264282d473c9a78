#pragma once
#include "ESP8266WiFi.h"
