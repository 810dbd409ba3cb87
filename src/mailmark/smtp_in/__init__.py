"""SMTP listeners: the MX (port 25) and, later, submission (587/465)."""
