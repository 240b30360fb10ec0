"""AWS Backup REST-JSON API driven by botocore's service model."""
