"""What the tests run against: services on loopback, the SQL stand-in, xAPI data."""
