"""``make bench``: cold start, peak memory, package sizes, custom-domain overhead, rotation time."""
