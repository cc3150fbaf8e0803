"""The /v1/files route: verify the token, re-check access, redirect to S3 or stream."""
