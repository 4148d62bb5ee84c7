"""Every pod is locked down as the Compose stack's containers are, no pod talks to the API
unless it must, traffic is denied unless a policy lets it, and no secret is in the manifests."""

import pytest

from tests.k8s.manifests import OVERLAYS, named, objects, pod_spec, workloads

# The dev overlay's Prometheus discovers the replicas through the API (a Role on pods, read-only).
NEEDS_API = {("dev", "prometheus")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(overlay: str) -> None:
    for workload in workloads(overlay):
        spec, name = pod_spec(workload), workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken", True) is ((overlay, name) in NEEDS_API), name
        for c in spec["containers"]:
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]) & set(c["resources"]["requests"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_the_restricted_pod_security_standard(overlay: str) -> None:
    (namespace,) = objects(overlay, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_access_is_read_only_and_namespaced(overlay: str) -> None:
    assert not objects(overlay, "ClusterRole") and not objects(overlay, "ClusterRoleBinding")
    for role in objects(overlay, "Role"):
        assert {verb for rule in role["rules"] for verb in rule["verbs"]} <= {"get", "list", "watch"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_in_the_manifests(overlay: str) -> None:
    assert not objects(overlay, "Secret")
    referenced = {
        volume["secret"]["secretName"]
        for workload in workloads(overlay)
        for volume in pod_spec(workload).get("volumes", [])
        if "secret" in volume
    }
    assert referenced == {"linkstack-secrets"}


def peers(policy: dict, direction: str) -> list[dict]:
    return [
        peer
        for rule in policy["spec"].get(direction, [])
        for peer in rule.get("to" if direction == "egress" else "from", [])
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_traffic_is_denied_unless_a_policy_lets_it(overlay: str) -> None:
    deny = named(overlay, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    app = named(overlay, "NetworkPolicy", "app")
    sources = [peer.get("namespaceSelector", {}).get("matchLabels", {}) | peer["podSelector"]["matchLabels"]
               for peer in peers(app, "ingress")]  # fmt: skip
    names = {labels.get("app.kubernetes.io/name") for labels in sources}
    components = {labels.get("app.kubernetes.io/component") for labels in sources}
    assert names == {"nginx-ingress", "prometheus"} if overlay == "prod" else names == {"nginx-ingress", "linkstack"}
    assert overlay == "prod" or components == {None, "prometheus"}
    destinations = peers(app, "egress")
    if overlay == "dev":
        assert {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in destinations} == {
            "postgres",
            "redis",
        }
    else:
        assert all(set(p) == {"ipBlock"} for p in destinations), "managed services, by address"
    dns = named(overlay, "NetworkPolicy", "dns")["spec"]
    assert dns["podSelector"] == {} and dns["policyTypes"] == ["Egress"]
    assert {port["port"] for rule in dns["egress"] for port in rule["ports"]} == {53}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_selected_by_a_policy_of_its_own(overlay: str) -> None:
    components = {
        w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads(overlay)
    }
    selected = {
        p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        for p in objects(overlay, "NetworkPolicy")
    }
    assert components <= selected


def test_the_prod_image_is_pinned_by_digest() -> None:
    images = {c["image"] for w in workloads("prod") for c in pod_spec(w)["containers"]}
    assert images and all("@sha256:" in image for image in images), images
