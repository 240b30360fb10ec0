"""snowvault: a self-hosted backup service that speaks the AWS Backup API."""

__version__ = "0.1.0"
