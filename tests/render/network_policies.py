"""How a set of rendered NetworkPolicies decides a path: a path is allowed when a policy
selecting the destination Pod lets the source in on the port, and a policy selecting the
source lets it out. The Pods' labels and ports are read from the rendered objects."""

from __future__ import annotations

import ipaddress
import urllib.parse

import jmespath
import yaml

from lastack.chart.render import find
from lastack.paths import CHART_DIR

VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["networkPolicy"]
# The Moodle chart's own policies allow all egress; la-stack refuses to render beside them.
MOODLE_OWN_POLICIES_OFF = {"networkPolicy": {"enabled": False},
                           "mariadb": {"networkPolicy": {"enabled": False}}}
ENABLED = {"networkPolicy": {"enabled": True}, "moodle": MOODLE_OWN_POLICIES_OFF}
ECK_CLUSTER_LABEL = "elasticsearch.k8s.elastic.co/cluster-name"  # on every ES Pod (ECK)
METADATA_ENDPOINT = "169.254.169.254"


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels and In/NotIn/Exists/DoesNotExist)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def ports_allow(rule: dict, port: int, protocol: str = "TCP") -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol
                            for p in ports)


def same_namespace_peer(peer: dict, labels: dict) -> bool:
    return "namespaceSelector" not in peer and "ipBlock" not in peer and selects(
        peer.get("podSelector") or {}, labels)


def policies_of(policies: list[dict], labels: dict, direction: str) -> list[dict]:
    kind = direction.capitalize()
    return [p for p in policies if selects(p["spec"]["podSelector"], labels)
            and kind in p["spec"]["policyTypes"]]


def allowed(policies: list[dict], source: dict, target: dict, port: int) -> bool:
    """Pod (labels) `source` may open TCP `port` on Pod `target` in the release namespace."""
    inbound = any(ports_allow(rule, port) and any(same_namespace_peer(peer, source)
                                                  for peer in rule.get("from") or [])
                  for p in policies_of(policies, target, "ingress")
                  for rule in p["spec"].get("ingress") or [])
    outbound = any(ports_allow(rule, port) and any(same_namespace_peer(peer, target)
                                                   for peer in rule.get("to") or [])
                   for p in policies_of(policies, source, "egress")
                   for rule in p["spec"].get("egress") or [])
    return inbound and outbound


def egress_to_address(policies: list[dict], source: dict, address: str, port: int) -> bool:
    ip = ipaddress.ip_address(address)
    for p in policies_of(policies, source, "egress"):
        for rule in p["spec"].get("egress") or []:
            for block in (peer["ipBlock"] for peer in rule.get("to") or [] if "ipBlock" in peer):
                net = ipaddress.ip_network(block["cidr"])
                inside = ip.version == net.version and ip in net
                excepted = any(ip.version == ipaddress.ip_network(e).version
                               and ip in ipaddress.ip_network(e) for e in block.get("except", []))
                if inside and not excepted and ports_allow(rule, port):
                    return True
    return False


def ingress_from_peer(policies: list[dict], target: dict, peer: dict, port: int) -> bool:
    return any(ports_allow(rule, port) and peer in (rule.get("from") or [])
               for p in policies_of(policies, target, "ingress")
               for rule in p["spec"].get("ingress") or [])


def pod_labels(objects: list[dict], kind: str, name: str) -> dict:
    return jmespath.search("spec.template.metadata.labels", find(objects, kind, name)[0])


def container_port(objects: list[dict], kind: str, name: str) -> int:
    return jmespath.search("spec.template.spec.containers[0].ports[0].containerPort",
                           find(objects, kind, name)[0])


def es_pod_labels(objects: list[dict]) -> dict:
    """The Pods behind the URL the clients use: ECK's `<cluster>-es-http` Service."""
    job = find(objects, "Job", "la-stack-es-bootstrap")[0]
    url = jmespath.search("spec.template.spec.containers[0].env[?name=='ES_URL'].value | [0]",
                          job)
    host = urllib.parse.urlsplit(url).hostname.split(".")[0]
    return {ECK_CLUSTER_LABEL: host.removesuffix("-es-http")}


def hook_labels(objects: list[dict], job: str) -> dict:
    return pod_labels(objects, "Job", job)


def network_policies(objects: list[dict]) -> list[dict]:
    return find(objects, "NetworkPolicy")
