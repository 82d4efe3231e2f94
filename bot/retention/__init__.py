"""Data retention: purging old history regularly, and all of a workspace's data when it leaves."""
