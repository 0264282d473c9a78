"""The AWS side: AWS IoT Core as the bridge's source."""
