"""Control plane: the AWS Backup model, catalog, services and scheduler."""
