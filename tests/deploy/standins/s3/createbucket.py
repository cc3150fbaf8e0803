"""What deploy/compose.yaml's createbucket service does with mc, against the moto stand-in:
the bucket and the lifecycle rule for abandoned staging uploads. (moto does not enforce
IAM policies, so the bucket-scoped user is not made here.)"""

import os

import boto3

s3 = boto3.client(
    "s3",
    endpoint_url="http://minio:9000",
    region_name="us-east-1",
    aws_access_key_id=os.environ["MINIO_ROOT_USER"],
    aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"],
)
if "weightgate" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
    s3.create_bucket(Bucket="weightgate")
s3.put_bucket_lifecycle_configuration(
    Bucket="weightgate",
    LifecycleConfiguration={
        "Rules": [
            {
                "ID": "abandoned-staging",
                "Filter": {"Prefix": "objects/staging/"},
                "Status": "Enabled",
                "Expiration": {"Days": 2},
            }
        ]
    },
)
print("bucket weightgate ready")
