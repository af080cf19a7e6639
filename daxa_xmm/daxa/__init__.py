"""DAXA's API: the Archive, the DAXA-named plans of each step, DAXA's records read from disk."""
