"""The local control plane: certificates, processes, kwok nodes, operators, waits."""
