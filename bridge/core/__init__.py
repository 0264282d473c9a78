"""The bridge's core: device states and durable storage; it knows nothing of AWS or Azure."""
