"""What KTRDR backends of every era send to and read from this service (docs/ktrdr.md)."""
