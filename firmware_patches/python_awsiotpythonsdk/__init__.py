"""AWSIoTPythonSDK v1 (`AWSIoTMQTTClient`, `AWSIoTMQTTShadowClient`) moved to azure-iot-device."""

from __future__ import annotations

from firmware_patches._python.awsiotpythonsdk_recipe import AwsIotPythonSdkRecipe

RECIPE = AwsIotPythonSdkRecipe()
