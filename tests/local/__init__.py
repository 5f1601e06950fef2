"""``make local``: every Lambda's real handler against emulators on 127.0.0.1."""
