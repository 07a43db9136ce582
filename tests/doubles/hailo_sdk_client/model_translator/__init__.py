"""TEST DOUBLE: ``hailo_sdk_client.model_translator``."""
