"""What tests (and bench scripts) share: the project's params as typed sections."""
