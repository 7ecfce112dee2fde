"""State shared by every API process through Redis: the link itself (``redis_link``, where
Redis errors are translated, once) and the chatbot-config cache with its cross-process
invalidation (``config_cache``). Without Redis both fall back to per-process state."""
