"""TEST DOUBLE: ``hailo_sdk_client.sdk_backend``."""
