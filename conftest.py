"""Root conftest: the txchaos plugin itself loads through its pytest11 entry point."""
