"""awsiotsdk v2 (`awsiot.mqtt_connection_builder`, `iotshadow`) moved to azure-iot-device."""

from __future__ import annotations

from firmware_patches._python.awsiotsdk_recipe import AwsIotSdkRecipe

RECIPE = AwsIotSdkRecipe()
