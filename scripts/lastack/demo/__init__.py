"""`make demo` and the dashboard screenshots."""
