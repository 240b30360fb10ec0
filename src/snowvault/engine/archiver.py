"""archiver (in progress)."""
