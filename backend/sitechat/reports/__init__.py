"""What owners read about their chatbots, computed from stored records (no HTTP, no SQL)."""
