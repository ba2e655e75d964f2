"""dvc-bot: a chat assistant for Vietnamese online public-service procedures."""
