"""Deploying to AWS from a workstation: the Lambda package and the phone page on S3."""
