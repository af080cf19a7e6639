"""The archive report and its quick-look pictures."""
