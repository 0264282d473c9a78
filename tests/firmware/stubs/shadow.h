/* The coreMQTT Device Shadow library's topic macro, as its shadow.h spells it. */
#pragma once
#define SHADOW_NAME_CLASSIC ""
#define SHADOW_TOPIC_STR_UPDATE_DELTA(thing, thingLength, shadow, shadowLength) \
    "$aws/things/" thing "/shadow/update/delta"
