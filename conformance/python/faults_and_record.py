"""The official Python client against a kubox started with --faults and --record.

The faults file makes the first ConfigMap create fail with an injected 500; the client sees
an ApiException with the Status the server sent, creates again, and reads the object back.
Prints one JSON line of what it saw; the caller checks it against the record file.
"""
import json
import os
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main() -> int:
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])
    core = client.CoreV1Api()
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python"), data={"k": "v"})
    seen = {}
    try:
        core.create_namespaced_config_map("default", body)
        seen["first"] = 201
    except ApiException as e:
        seen["first"] = e.status
        seen["first_reason"] = json.loads(e.body).get("reason")
    created = core.create_namespaced_config_map("default", body)
    seen["second_rv"] = created.metadata.resource_version
    got = core.read_namespaced_config_map("from-python", "default")
    seen["read"] = got.data
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
