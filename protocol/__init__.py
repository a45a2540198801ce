"""Messages and socket addresses shared by the orchestrator, the workers and the inference process."""
