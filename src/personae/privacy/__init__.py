"""Privacy: pseudonymised ids (here), and later federated training and differential privacy."""
