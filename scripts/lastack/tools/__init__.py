"""Pinned tools: their versions (read from go.mod and values) and their builds into .tools/."""
