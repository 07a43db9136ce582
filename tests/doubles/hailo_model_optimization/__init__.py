"""TEST DOUBLE package (see acceleras/utils/acceleras_exceptions.py)."""
