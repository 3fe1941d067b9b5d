"""Creates in a local moto what template.yaml creates in AWS, for sam local.

The table comes from template.yaml's TicketsTable (keys, attributes, indexes),
so the local copy cannot drift from what deploys; the names come from the env
file the functions run with (local.env.json): table, schedule group, the
JWT key secrets (the signing ring with one generated seed, kid "1", as
template.yaml's JwtSigningKeysSecret, and the empty verify keys admin-signin
publishes to, as its JwtKeysSecret),
the queues, the SES configuration set, and the sender SES must know as verified. Idempotent: existing
resources are kept.

usage: python scripts/local_resources.py ENDPOINT_URL REGION ENV_FILE
"""
import json
import secrets
import string
import sys

import boto3

from template_functions import load_template


def main(endpoint, region, env_file):
    template = load_template()
    with open(env_file) as f:
        full = json.load(f)
    env = full["Parameters"]
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    dynamo = session.client("dynamodb", endpoint_url=endpoint)
    table = template["Resources"]["TicketsTable"]["Properties"]
    name = env["TICKETING_TABLE"]
    if name not in dynamo.list_tables()["TableNames"]:
        dynamo.create_table(
            TableName=name,
            BillingMode=table["BillingMode"],
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": table["StreamSpecification"]["StreamViewType"]},
        )
        ttl = table["TimeToLiveSpecification"]
        dynamo.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]}
        )
        print(f"created table {name}")
    scheduler = session.client("scheduler", endpoint_url=endpoint)
    group = env["TICKETING_SCHEDULE_GROUP"]
    try:
        scheduler.get_schedule_group(Name=group)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=group)
        print(f"created schedule group {group}")
    # The queues the functions read and write, by the names in their ARNs.
    sqs = session.client("sqs", endpoint_url=endpoint)
    for var in ("TICKETING_FAILURE_QUEUE_ARN", "TICKETING_SCHEDULE_DLQ_ARN"):
        sqs.create_queue(QueueName=env[var].rsplit(":", 1)[-1])
    sqs.create_queue(QueueName=env["TICKETING_WEBHOOK_QUEUE_URL"].rsplit("/", 1)[-1])
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    alphabet = string.ascii_letters + string.digits
    seed = "".join(secrets.choice(alphabet) for _ in range(64))
    for name, value in (
        (full["AdminSigninFunction"]["TICKETING_JWT_SIGNING_SECRET_ARN"], {"alg": "ES256", "currentKid": "1", "current": seed}),
        (env["TICKETING_JWT_SECRET_ARN"], {"alg": "ES256", "keys": []}),
    ):
        try:
            sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            sm.create_secret(Name=name, SecretString=json.dumps(value))
            print(f"created JWT key secret {name}")
    # moto's SES, like SES, rejects mail from an unverified sender, and mail
    # naming a configuration set it does not know.
    ses = session.client("ses", endpoint_url=endpoint)
    ses.verify_email_identity(EmailAddress=env["TICKETING_MAIL_FROM"])
    try:
        ses.create_configuration_set(ConfigurationSet={"Name": env["TICKETING_SES_CONFIGURATION_SET"]})
    except ses.exceptions.ConfigurationSetAlreadyExistsException:
        pass
    print(f"verified sender {env['TICKETING_MAIL_FROM']}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
