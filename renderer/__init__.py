"""The renderer service: turns courses into documents."""
