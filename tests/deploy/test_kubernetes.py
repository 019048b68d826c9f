"""deploy/k8s: the invariants of the manifests. `make deploy-lint` checks their schemas (kubernetes-validate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.deploy.files import K8S, container, dockerfile_command, manifest, manifest_files, manifests, pod_spec

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def workloads() -> list[dict[str, Any]]:
    return [item for item in manifests() if item["kind"] in WORKLOADS]


def shop_roles() -> dict[str, dict[str, Any]]:
    return {
        "api": manifest("Deployment", "shop-api"),
        "worker": manifest("Deployment", "shop-worker"),
        "migrate": manifest("Job", "shop-migrate"),
    }


def kustomizations() -> dict[str, dict[str, Any]]:
    return {
        path.parent.relative_to(K8S).as_posix(): yaml.safe_load(path.read_text())
        for path in sorted(K8S.rglob("kustomization.yaml"))
    }


def test_every_manifest_belongs_to_one_kustomization_except_the_secret_examples() -> None:
    listed = [
        (K8S / folder / resource).resolve()
        for folder, kustomization in kustomizations().items()
        for resource in kustomization["resources"]
    ]
    for path in manifest_files():
        expected = 0 if path.name == "secret.example.yaml" else 1
        assert listed.count(path.resolve()) == expected, path
    assert (K8S / "base").resolve() in listed  # the self-contained overlay builds on the base


def test_the_migrate_job_and_the_base_deploy_the_same_release() -> None:
    assert kustomizations()["migrate"]["images"] == kustomizations()["base"]["images"]


def test_api_worker_and_migrate_run_one_image_in_three_roles() -> None:
    roles = {role: container(workload) for role, workload in shop_roles().items()}
    assert len({role["image"] for role in roles.values()}) == 1
    assert roles["api"]["command"] == dockerfile_command()
    assert roles["worker"]["command"] == ["shop", "worker"]
    assert roles["migrate"]["command"] == ["shop", "migrate"]
    for role in roles.values():
        assert role["envFrom"] == [
            {"configMapRef": {"name": "shop-config"}},
            {"secretRef": {"name": "shop-secrets"}},
        ]


def test_no_api_replica_runs_migrations() -> None:
    api = manifest("Deployment", "shop-api")
    assert "initContainers" not in pod_spec(api)
    commands = [" ".join(item.get("command", []) + item.get("args", [])) for item in pod_spec(api)["containers"]]
    assert not [command for command in commands if "migrate" in command or "--setup" in command]
    job = manifest("Job", "shop-migrate")["spec"]
    assert job["parallelism"] == 1
    assert job["template"]["spec"]["restartPolicy"] == "Never"


def test_the_api_has_at_least_two_replicas_and_rolls_without_losing_capacity() -> None:
    spec = manifest("Deployment", "shop-api")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    autoscaler = manifest("HorizontalPodAutoscaler", "shop-api")
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-api"}
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 10)
    [metric] = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    budget = manifest("PodDisruptionBudget", "shop-api")["spec"]
    assert budget["selector"] == spec["selector"]
    assert budget["minAvailable"] >= 1


def test_probes_ask_the_right_questions() -> None:
    api = container(manifest("Deployment", "shop-api"))
    assert api["readinessProbe"]["httpGet"] == {"path": "/api/ready/", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/api/health/", "port": "http"}
    assert api["startupProbe"]["httpGet"] == {"path": "/api/health/", "port": "http"}
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_traffic_reaches_the_api_through_the_service_and_the_ingress() -> None:
    service = manifest("Service", "shop-api")["spec"]
    assert service["selector"] == manifest("Deployment", "shop-api")["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == "http"
    [rule] = manifest("Ingress", "shop-api")["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "shop-api", "port": {"name": "http"}}


@pytest.mark.parametrize("workload", workloads(), ids=lambda item: f"{item['kind']}/{item['metadata']['name']}")
def test_every_pod_runs_unprivileged_with_a_read_only_root_and_bounded_resources(workload: dict[str, Any]) -> None:
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for item in spec["containers"]:
        assert item["securityContext"]["readOnlyRootFilesystem"] is True
        assert item["securityContext"]["allowPrivilegeEscalation"] is False
        assert item["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        for bound in ("requests", "limits"):
            assert set(item["resources"][bound]) == {"cpu", "memory"}


@pytest.mark.parametrize("role", ["api", "worker", "migrate"])
def test_shop_pods_write_only_to_their_empty_dirs(role: str) -> None:
    workload = shop_roles()[role]
    mounts = {mount["mountPath"]: mount["name"] for mount in container(workload)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a path inside the pod
    assert "emptyDir" in volumes[mounts["/app/var"]]


def test_configuration_and_secrets_are_apart_and_no_secret_is_committed() -> None:
    config = manifest("ConfigMap", "shop-config")["data"]
    assert config["APP_ENV"] == "production"
    assert config["WORKER_IN_PROCESS"] == "false"
    for key in config:
        assert not key.endswith(("PASSWORD", "SECRET", "SECRET_KEY", "API_KEY", "_URL")), key
    secrets = [item for item in manifests() if item["kind"] == "Secret"]
    assert {item["_file"] for item in secrets} == {"base/secret.example.yaml", "self-contained/secret.example.yaml"}
    for secret in secrets:
        assert "data" not in secret
        for value in secret["stringData"].values():
            assert "CHANGE-ME" in value
    shop_secrets = manifest("Secret", "shop-secrets")["stringData"]
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= set(shop_secrets)


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str = "shop"
    namespace_labels: tuple[tuple[str, str], ...] = ()

    def namespace_matches(self, selector: dict[str, Any]) -> bool:
        labels = dict(self.namespace_labels) | {"kubernetes.io/metadata.name": self.namespace}
        return matches(selector, labels)


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); the empty selector matches everything."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: Pod) -> bool:
    if "ipBlock" in peer:
        return pod.namespace == "outside"
    if "namespaceSelector" in peer:
        return pod.namespace_matches(peer["namespaceSelector"]) and matches(peer.get("podSelector", {}), pod.labels)
    return pod.namespace == "shop" and matches(peer["podSelector"], pod.labels)


def _isolating(pod: Pod, direction: str) -> list[dict[str, Any]]:
    return [
        policy["spec"]
        for policy in manifests()
        if policy["kind"] == "NetworkPolicy"
        and direction in policy["spec"]["policyTypes"]
        and matches(policy["spec"]["podSelector"], pod.labels)
    ]


def allowed(source: Pod, target: Pod, port: int) -> bool:
    """Whether the namespace's NetworkPolicies (base and self-contained together) let `source` open `target:port`."""

    def permitted(pod: Pod, direction: str, peer_key: str, other: Pod) -> bool:
        if pod.namespace != "shop":
            return True  # our policies bind only our namespace
        policies = _isolating(pod, direction)
        if not policies:
            return True
        return any(
            (peer_key not in rule or any(_peer_matches(peer, other) for peer in rule[peer_key]))
            and ("ports" not in rule or any(item["port"] == port for item in rule["ports"]))
            for policy in policies
            for rule in policy.get(direction.lower(), [])
        )

    return permitted(source, "Egress", "to", target) and permitted(target, "Ingress", "from", source)


API = Pod({"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "api"})
WORKER = Pod({"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "worker"})
MIGRATE = Pod({"app.kubernetes.io/name": "shop", "app.kubernetes.io/component": "migrate"})
POSTGRES = Pod({"app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database"})
REDIS = Pod({"app.kubernetes.io/name": "redis", "app.kubernetes.io/component": "queue"})
INTRUDER = Pod({"app.kubernetes.io/name": "debug-shell"})
NEIGHBOUR = Pod({"app": "other"}, namespace="other-team")
INGRESS_CONTROLLER = Pod(
    {"app.kubernetes.io/name": "ingress-nginx"},
    namespace="ingress-nginx",
)
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
INTERNET = Pod({}, namespace="outside")


def test_only_the_api_worker_and_migrate_job_reach_postgres() -> None:
    assert [allowed(pod, POSTGRES, 5432) for pod in (API, WORKER, MIGRATE)] == [True, True, True]
    for pod in (INTRUDER, NEIGHBOUR, INGRESS_CONTROLLER, REDIS):
        assert not allowed(pod, POSTGRES, 5432)


def test_only_the_api_and_worker_reach_redis() -> None:
    assert allowed(API, REDIS, 6379)
    assert allowed(WORKER, REDIS, 6379)
    for pod in (MIGRATE, INTRUDER, NEIGHBOUR, INGRESS_CONTROLLER, POSTGRES):
        assert not allowed(pod, REDIS, 6379)


def test_only_the_ingress_controller_reaches_the_api() -> None:
    assert allowed(INGRESS_CONTROLLER, API, 8000)
    for pod in (WORKER, INTRUDER, NEIGHBOUR):
        assert not allowed(pod, API, 8000)


def test_pods_reach_out_only_where_they_must() -> None:
    for pod in (API, WORKER, MIGRATE, POSTGRES, REDIS):
        assert allowed(pod, DNS, 53)
    assert allowed(WORKER, INTERNET, 443)  # Africa's Talking
    assert allowed(WORKER, INTERNET, 587)  # SMTP submission
    assert not allowed(API, INTERNET, 443)
    assert not allowed(MIGRATE, REDIS, 6379)
    assert not allowed(POSTGRES, INTERNET, 443)
    assert not allowed(INTRUDER, POSTGRES, 5432)
