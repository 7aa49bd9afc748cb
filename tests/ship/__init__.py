"""Ship tier: OCI publishing, Argo CD app-of-apps, chart-testing, air-gapped bundle."""
