"""Messages between the office and its customers: the notices of unread ones."""
