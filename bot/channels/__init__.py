"""Channels translate between a transport and the runner; they hold no conversation logic."""
